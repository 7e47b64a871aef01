"""jaxphysvae: physics-integrated variational autoencoders in JAX."""

import os

# Runtime checks of equinox (used by diffrax) raise through host callbacks compiled into the program, and JAX never
# stores a program with host callbacks in its persistent compilation cache, so every run would compile its training
# epoch again. The checks left in our programs validate the constant integration grids, which are correct by
# construction; in "nan" mode a failed check yields NaN, which the training loop's finiteness check reports. This
# only takes effect when equinox is imported after jaxphysvae, and a value set in the environment is respected.
os.environ.setdefault("EQX_ON_ERROR", "nan")

from jaxphysvae.errors import ConfigError, DataError, JaxPhysVAEError

__version__ = "0.1.0"
__all__ = ["ConfigError", "DataError", "JaxPhysVAEError", "__version__"]
