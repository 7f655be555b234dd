"""The reference's access to its arrays' library: the array API namespace and the named
functions the standard lacks (fastdl._devices), for any device's arrays. A NumPy scalar (what
NumPy's arithmetic on 0-d arrays returns) counts as a CPU array."""

from ... import _devices

_NUMPY_SCALAR = _devices.CPU_XP.generic


def namespace(a):
    if isinstance(a, _NUMPY_SCALAR):
        return _devices.CPU_XP
    return _devices.namespace(a)


def library(a):
    if isinstance(a, _NUMPY_SCALAR):
        return _devices.NUMPY
    return _devices.library(a)
