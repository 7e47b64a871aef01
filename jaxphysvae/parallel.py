"""Parallelism over devices: the mesh a training batch is split over (data parallelism) and the split itself, and
the mesh a sweep's members are sharded over."""

from __future__ import annotations

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from jaxphysvae.errors import ConfigError


def batch_mesh(shards: int, devices=None) -> Mesh | None:
    """The mesh that data parallelism splits batches over: `shards` local devices (None for one shard)."""
    if shards == 1:
        return None
    devices = jax.local_devices() if devices is None else list(devices)
    if len(devices) < shards:
        raise ConfigError(f"batch_shards={shards} needs {shards} devices, found {len(devices)} "
                          f"({devices[0].platform}); on a CPU set XLA_FLAGS=--xla_force_host_platform_device_count="
                          f"{shards} before jax starts (the CLI's --host-devices {shards})")
    return Mesh(np.asarray(devices[:shards]), ("batch",))


def split_groups(a: jax.Array, mesh: Mesh) -> jax.Array:
    """a (B, ...) as (D, B / D, ...), its leading group axis sharded over the mesh's D devices."""
    shards = mesh.devices.size
    a = a.reshape(shards, a.shape[0] // shards, *a.shape[1:])
    return jax.lax.with_sharding_constraint(a, NamedSharding(mesh, PartitionSpec("batch")))


def replicated(mesh: Mesh | None):
    """tree -> tree on every device of `mesh` (unchanged for None)."""
    return (lambda tree: tree) if mesh is None else (lambda tree: jax.device_put(tree, NamedSharding(mesh,
                                                                                                      PartitionSpec())))


def member_mesh(devices=None) -> Mesh:
    """The mesh a sweep shards its member axis over: `devices`, default every device (of every process)."""
    return Mesh(np.asarray(jax.devices() if devices is None else devices), ("members",))
