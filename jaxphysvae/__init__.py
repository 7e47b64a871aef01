"""jaxphysvae: physics-integrated variational autoencoders in JAX."""

from jaxphysvae.errors import ConfigError, DataError, JaxPhysVAEError

__version__ = "0.1.0"
__all__ = ["ConfigError", "DataError", "JaxPhysVAEError", "__version__"]
