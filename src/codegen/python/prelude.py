# The part of every generated module that does not depend on the unit: the bpf() syscall through
# ctypes, value codecs built from the unit's layouts, maps, globals and configs. Standard library
# only. docs/language.md §15.7 is the contract.

import ctypes as _ctypes
import mmap as _mmap
import os as _os
import platform as _platform

_BPF_MAP_LOOKUP_ELEM = 1
_BPF_MAP_UPDATE_ELEM = 2
_BPF_MAP_DELETE_ELEM = 3
_BPF_MAP_GET_NEXT_KEY = 4
_BPF_OBJ_GET_INFO_BY_FD = 15
_BPF_ANY = 0

_SYS_BPF = {"x86_64": 321, "aarch64": 280, "riscv64": 280, "s390x": 351, "ppc64le": 361}.get(_platform.machine())
_libc = _ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = _ctypes.c_long


class _MapElemAttr(_ctypes.Structure):
    _fields_ = [
        ("map_fd", _ctypes.c_uint32),
        ("pad", _ctypes.c_uint32),
        ("key", _ctypes.c_uint64),
        ("value", _ctypes.c_uint64),
        ("flags", _ctypes.c_uint64),
    ]


class _InfoAttr(_ctypes.Structure):
    _fields_ = [("bpf_fd", _ctypes.c_uint32), ("info_len", _ctypes.c_uint32), ("info", _ctypes.c_uint64)]


class _MapInfo(_ctypes.Structure):
    _fields_ = [
        ("type", _ctypes.c_uint32),
        ("id", _ctypes.c_uint32),
        ("key_size", _ctypes.c_uint32),
        ("value_size", _ctypes.c_uint32),
        ("max_entries", _ctypes.c_uint32),
        ("map_flags", _ctypes.c_uint32),
        ("name", _ctypes.c_char * 16),
        ("pad", _ctypes.c_uint8 * 64),
    ]


def _bpf(cmd, attr):
    if _SYS_BPF is None:
        raise OSError("bpf(): unsupported machine " + _platform.machine())
    r = _libc.syscall(_ctypes.c_long(_SYS_BPF), _ctypes.c_int(cmd), _ctypes.byref(attr), _ctypes.c_uint(_ctypes.sizeof(attr)))
    if r < 0:
        return -_ctypes.get_errno()
    return r


def _addr(buf):
    return _ctypes.addressof(buf) if buf is not None else 0


def _map_info(fd):
    info = _MapInfo()
    attr = _InfoAttr(fd, _ctypes.sizeof(info), _ctypes.addressof(info))
    err = _bpf(_BPF_OBJ_GET_INFO_BY_FD, attr)
    if err < 0:
        raise OSError(-err, _os.strerror(-err) + " (BPF_OBJ_GET_INFO_BY_FD)")
    return info


def _possible_cpus():
    with open("/sys/devices/system/cpu/possible") as f:
        text = f.read().strip()
    n = 0
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        n = max(n, int(hi or lo) + 1)
    return n


# ---- what the executable passed across exec() ----

def _parse_fds():
    table = {}
    for entry in _os.environ.get("KSC_FDS", "").split(";"):
        key, sep, value = entry.partition("=")
        if sep:
            table[key] = value
    return table


_FDS = _parse_fds()


def _fd(kind, name, what=None):
    """The descriptor entry `kind:name`; `what` names the object in errors (default: `kind`)."""
    value = _FDS.get(kind + ":" + name)
    if value is None:
        what = what or kind
        if _os.environ.get("KSC_UNIT") != _UNIT:
            raise RuntimeError(
                "%s.py: the %s %s is reached through the descriptors the %s executable passes to the script it "
                "runs with exec(); run the script through that executable" % (_UNIT, what, name, _UNIT))
        raise RuntimeError("%s.py: the executable passed no descriptor for %s %s" % (_UNIT, what, name))
    return value


# ---- value codecs: the unit's layouts, as on the BPF side ----

class _Int:
    def __init__(self, size, signed, name):
        self.size, self.signed, self.name = size, signed, name
        bits = 8 * size
        self.lo, self.hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)

    def decode(self, buf, off):
        return int.from_bytes(bytes(buf[off:off + self.size]), "little", signed=self.signed)

    def encode(self, buf, off, v):
        if isinstance(v, bool) or not isinstance(v, int):
            if hasattr(v, "__index__") and not isinstance(v, bool):
                v = v.__index__()
            else:
                raise TypeError("%s expects an int, got %s" % (self.name, type(v).__name__))
        if not self.lo <= v <= self.hi:
            raise OverflowError("%d does not fit %s (%d..%d)" % (v, self.name, self.lo, self.hi))
        buf[off:off + self.size] = v.to_bytes(self.size, "little", signed=self.signed)

    def zero(self):
        return 0


class _Bool:
    size = 1

    def decode(self, buf, off):
        return buf[off] != 0

    def encode(self, buf, off, v):
        if not isinstance(v, (bool, int)):
            raise TypeError("bool expects a bool, got %s" % type(v).__name__)
        buf[off] = 1 if v else 0

    def zero(self):
        return False


class _Str:
    def __init__(self, size):
        self.size = size

    def decode(self, buf, off):
        raw = bytes(buf[off:off + self.size])
        return raw.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")

    def encode(self, buf, off, v):
        if isinstance(v, str):
            v = v.encode("utf-8", "surrogateescape")
        if not isinstance(v, (bytes, bytearray)):
            raise TypeError("str(%d) expects a str, got %s" % (self.size, type(v).__name__))
        if len(v) > self.size - 1 or b"\0" in v:
            raise ValueError("%r does not fit str(%d) (at most %d bytes, no NUL)" % (v, self.size, self.size - 1))
        buf[off:off + self.size] = bytes(v) + b"\0" * (self.size - len(v))

    def zero(self):
        return ""


class _Array:
    def __init__(self, elem, n):
        self.elem, self.n = elem, n
        self.size = elem.size * n

    def decode(self, buf, off):
        return [self.elem.decode(buf, off + i * self.elem.size) for i in range(self.n)]

    def encode(self, buf, off, v):
        v = list(v)
        if len(v) > self.n:
            raise ValueError("%d elements do not fit an array of %d" % (len(v), self.n))
        for i in range(self.n):
            self.elem.encode(buf, off + i * self.elem.size, v[i] if i < len(v) else self.elem.zero())

    def zero(self):
        return [self.elem.zero() for _ in range(self.n)]


class Struct:
    """A KernelScript struct value: fields as attributes (and as items, `s["f"]`)."""

    _size = 0
    _layout = ()

    def __init__(self, *args, **fields):
        if args:
            if len(args) != 1 or fields:
                raise TypeError("%s() takes a dict or keyword arguments" % type(self).__name__)
            fields = dict(args[0])
        for name, _, codec in self._layout:
            object.__setattr__(self, name, fields.pop(name, codec.zero()))
        if fields:
            raise TypeError("%s has no field %s" % (type(self).__name__, ", ".join(sorted(fields))))

    def __setattr__(self, name, value):
        if not any(name == f for f, _, _ in self._layout):
            raise AttributeError("%s has no field %s" % (type(self).__name__, name))
        object.__setattr__(self, name, value)

    def __getitem__(self, name):
        if not any(name == f for f, _, _ in self._layout):
            raise KeyError(name)
        return getattr(self, name)

    def __setitem__(self, name, value):
        if not any(name == f for f, _, _ in self._layout):
            raise KeyError(name)
        object.__setattr__(self, name, value)

    def keys(self):
        return [f for f, _, _ in self._layout]

    def _asdict(self):
        return {f: getattr(self, f) for f, _, _ in self._layout}

    def __iter__(self):
        return iter(self.keys())

    def __eq__(self, other):
        if isinstance(other, dict):
            return self._asdict() == other
        return type(other) is type(self) and self._asdict() == other._asdict()

    def __repr__(self):
        return "%s(%s)" % (type(self).__name__, ", ".join("%s=%r" % kv for kv in self._asdict().items()))


class _StructCodec:
    def __init__(self, cls):
        self.cls = cls
        self.size = cls._size

    def decode(self, buf, off):
        v = self.cls.__new__(self.cls)
        for name, o, codec in self.cls._layout:
            object.__setattr__(v, name, codec.decode(buf, off + o))
        return v

    def encode(self, buf, off, v):
        if isinstance(v, dict):
            v = self.cls(v)
        elif not isinstance(v, self.cls):
            raise TypeError("%s expects a %s or a dict, got %s" % (self.cls.__name__, self.cls.__name__, type(v).__name__))
        buf[off:off + self.size] = b"\0" * self.size
        for name, o, codec in self.cls._layout:
            codec.encode(buf, off + o, getattr(v, name))

    def zero(self):
        return self.cls()


def _layout(cls, size, fields):
    cls._size = size
    cls._layout = tuple(fields)
    return cls


# ---- maps ----

class Map:
    """A BPF map of the unit: `m[k]`, `m[k] = v`, `del m[k]`, `k in m`, iteration, keys(), values(),
    items(), get(), len(). Per-CPU maps read as a list with one value per possible CPU and take such
    a list, or one value for every CPU."""

    def __init__(self, name, kind, key, value, max_entries, array, percpu):
        self.name, self.kind, self.key_codec, self.value_codec = name, kind, key, value
        self.max_entries, self.array, self.percpu = max_entries, array, percpu
        self._fd = None

    @property
    def fd(self):
        if self._fd is None:
            self._fd = int(_fd("map", self.name))
            if self.percpu:
                self._cpus = _possible_cpus()
                self._slot = (self.value_codec.size + 7) & ~7
        return self._fd

    def _key(self, k):
        if self.array:
            if isinstance(k, bool) or not isinstance(k, int):
                raise TypeError("%s is indexed by an int, got %s" % (self.name, type(k).__name__))
            if not 0 <= k < self.max_entries:
                raise IndexError("%s index %d out of range (0..%d)" % (self.name, k, self.max_entries - 1))
        buf = (_ctypes.c_uint8 * self.key_codec.size)()
        mv = memoryview(buf).cast("B")
        self.key_codec.encode(mv, 0, k)
        return buf

    def _value_buf(self):
        n = self._cpus * self._slot if self.percpu else self.value_codec.size
        return (_ctypes.c_uint8 * max(n, 1))()

    def _lookup(self, kbuf):
        fd = self.fd
        vbuf = self._value_buf()
        err = _bpf(_BPF_MAP_LOOKUP_ELEM, _MapElemAttr(fd, 0, _addr(kbuf), _addr(vbuf), 0))
        if err == -2:
            return None
        if err < 0:
            raise OSError(-err, "%s: lookup: %s" % (self.name, _os.strerror(-err)))
        mv = memoryview(vbuf).cast("B")
        if self.percpu:
            return [self.value_codec.decode(mv, i * self._slot) for i in range(self._cpus)]
        return self.value_codec.decode(mv, 0)

    def __getitem__(self, k):
        v = self._lookup(self._key(k))
        if v is None:
            raise KeyError(k)
        return v

    def get(self, k, default=None):
        try:
            return self[k]
        except KeyError:
            return default

    def __setitem__(self, k, v):
        kbuf = self._key(k)
        fd = self.fd
        vbuf = self._value_buf()
        mv = memoryview(vbuf).cast("B")
        if self.percpu:
            values = list(v) if isinstance(v, (list, tuple)) else [v] * self._cpus
            if len(values) != self._cpus:
                raise ValueError("%s is per-CPU: give one value or a list of %d" % (self.name, self._cpus))
            for i, x in enumerate(values):
                self.value_codec.encode(mv, i * self._slot, x)
        else:
            self.value_codec.encode(mv, 0, v)
        err = _bpf(_BPF_MAP_UPDATE_ELEM, _MapElemAttr(fd, 0, _addr(kbuf), _addr(vbuf), _BPF_ANY))
        if err < 0:
            raise OSError(-err, "%s: update: %s" % (self.name, _os.strerror(-err)))

    def __delitem__(self, k):
        if self.array:
            raise TypeError("%s is an array map: its entries cannot be deleted (assign 0 instead)" % self.name)
        kbuf = self._key(k)
        err = _bpf(_BPF_MAP_DELETE_ELEM, _MapElemAttr(self.fd, 0, _addr(kbuf), 0, 0))
        if err == -2:
            raise KeyError(k)
        if err < 0:
            raise OSError(-err, "%s: delete: %s" % (self.name, _os.strerror(-err)))

    def __contains__(self, k):
        try:
            return self._lookup(self._key(k)) is not None
        except (IndexError, TypeError):
            return False

    def keys(self):
        if self.array:
            return list(range(self.max_entries))
        fd = self.fd
        out = []
        size = self.key_codec.size
        cur = None
        nxt = (_ctypes.c_uint8 * size)()
        while True:
            err = _bpf(_BPF_MAP_GET_NEXT_KEY, _MapElemAttr(fd, 0, _addr(cur), _addr(nxt), 0))
            if err == -2:
                return out
            if err < 0:
                raise OSError(-err, "%s: next key: %s" % (self.name, _os.strerror(-err)))
            out.append(self.key_codec.decode(memoryview(nxt).cast("B"), 0))
            cur = (_ctypes.c_uint8 * size).from_buffer_copy(nxt)

    def __iter__(self):
        return iter(self.keys())

    def items(self):
        out = []
        for k in self.keys():
            v = self._lookup(self._key(k))
            if v is not None:
                out.append((k, v))
        return out

    def values(self):
        return [v for _, v in self.items()]

    def __len__(self):
        return self.max_entries if self.array else len(self.keys())

    def __repr__(self):
        return "<%s map %s>" % (self.kind, self.name)


class RawMap:
    """A map Python reaches only by its descriptor (ring buffers, queues, stacks, bloom filters,
    perf event arrays): `.fd`."""

    def __init__(self, name, kind):
        self.name, self.kind = name, kind

    @property
    def fd(self):
        return int(_fd("map", self.name))

    def __repr__(self):
        return "<%s map %s>" % (self.kind, self.name)


# ---- globals and configs: the kernel memory the BPF side uses, mapped ----

_mapped = {}


def _memory(fd):
    mem = _mapped.get(fd)
    if mem is None:
        info = _map_info(fd)
        page = _mmap.PAGESIZE
        size = ((info.value_size + 7) & ~7) * info.max_entries
        mem = _mmap.mmap(fd, (size + page - 1) // page * page, _mmap.MAP_SHARED, _mmap.PROT_READ | _mmap.PROT_WRITE)
        _mapped[fd] = mem
    return mem


def _global_location(name, what="global"):
    fd, _, off = _fd("global", name, what).partition(":")
    return _memory(int(fd)), int(off)


class Config:
    """A config block: its fields as attributes, read and written in the kernel's copy."""

    def __init__(self, name, cls):
        object.__setattr__(self, "_name", name)
        object.__setattr__(self, "_cls", cls)

    def _mem(self):
        # The config's struct is the variable of its own data section `.data.NAME`.
        return _global_location(self._name, "config")

    def _field(self, name):
        for f, off, codec in self._cls._layout:
            if f == name:
                return off, codec
        raise AttributeError("config %s has no field %s" % (self._name, name))

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        off, codec = self._field(name)
        mem, base = self._mem()
        return codec.decode(mem, base + off)

    def __setattr__(self, name, value):
        off, codec = self._field(name)
        mem, base = self._mem()
        codec.encode(mem, base + off, value)

    def _asdict(self):
        return {f: getattr(self, f) for f, _, _ in self._cls._layout}

    def __repr__(self):
        return "config %s %r" % (self._name, self._asdict())


def _install(module_name, globals_, maps, configs):
    """Makes the unit's globals attributes of the module that read and write kernel memory."""
    import sys
    import types

    class Unit(types.ModuleType):
        pass

    def prop(name, codec):
        def get(_self):
            mem, off = _global_location(name)
            return codec.decode(mem, off)

        def put(_self, value):
            mem, off = _global_location(name)
            codec.encode(mem, off, value)

        return property(get, put)

    for name, codec in globals_.items():
        setattr(Unit, name, prop(name, codec))
    for name in list(maps) + list(configs):
        def refuse(_self, value, name=name):
            raise AttributeError("%s is a %s of the unit and cannot be replaced" % (name, "map" if name in maps else "config"))
        value = maps[name] if name in maps else configs[name]
        setattr(Unit, name, property(lambda _self, v=value: v, refuse))
    sys.modules[module_name].__class__ = Unit
