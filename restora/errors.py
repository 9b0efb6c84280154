"""Restora's one error tree.

::

    RestoraError                      base of everything Restora raises on purpose
    ├── InputError (ValueError)       the input is unusable: missing, not media, truncated,
    │   │                             no video stream, bad URI/key. Permanent: never retried.
    │   └── UnsupportedInputError     valid media Restora cannot handle (yet)
    ├── ConfigError (ValueError)      bad settings, unknown stage/preset/model parameters
    ├── StageNotImplementedError      a stage that is declared but has no implementation yet
    ├── ModelError                    a model file is missing or its signature does not match
    ├── StorageError                  the asset store refused an operation (permanent)
    └── ServiceError                  a remote service failed
        ├── TransientServiceError     worth retrying: Triton UNAVAILABLE, timeouts, S3 5xx
        └── PermanentServiceError     not worth retrying: invalid argument, unknown model

Tasks retry only :class:`TransientServiceError` (see ``tasks/_retry.py``). Third-party errors are
wrapped with ``raise ... from exc`` so the original stays in the traceback.
"""

from __future__ import annotations


class RestoraError(Exception):
    """Base class of all errors Restora raises deliberately."""


class InputError(RestoraError, ValueError):
    """The input cannot be used (missing, not a media file, truncated, no video stream)."""


class UnsupportedInputError(InputError):
    """A valid media file with a feature Restora does not handle."""


class ConfigError(RestoraError, ValueError):
    """Invalid configuration, stage list, preset or parameter."""


class StageNotImplementedError(RestoraError, NotImplementedError):
    """A declared stage that has no implementation yet; never silently skipped."""


class ModelError(RestoraError):
    """A model is missing, unreadable, or its inputs/outputs are not what Restora expects."""


class StorageError(RestoraError):
    """The asset store refused an operation (bad key, missing object, permission)."""


class ServiceError(RestoraError):
    """A remote service (Triton, S3) failed."""


class TransientServiceError(ServiceError):
    """A failure that may go away on retry (unavailable, timeout, 5xx)."""


class PermanentServiceError(ServiceError):
    """A failure that a retry will not fix (invalid argument, unknown model)."""
