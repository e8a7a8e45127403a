/* py.c — `import m from "x.py"`: calls into an embedded CPython (docs/language.md §15.8;
 * ABI.md §9). Built into its own archive, libksrt_python.a, which only executables of units that
 * import a .py file link, together with libpython3.
 *
 * The interpreter starts at the first call, isolated from the PYTHON* environment (the program's
 * behaviour must not depend on it) and without Python's own signal handlers (the runtime's stay).
 * Each module is created from the source the executable embeds, under its import name, the first
 * time one of its functions is called. Values cross by the call's signature string: integers
 * (range-checked on the way back), bool, char, strings and structs as dicts. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "../src/internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct py_module {
    struct py_module *next;
    char *name;
    PyObject *module;
};

static struct py_module *modules;

/* The Python exception behind the last throw a call returned, for the uncaught-throw message. */
static struct {
    bool pending;
    int64_t code;
    char text[1024];
} last;

static const char *throw_detail(int64_t code)
{
    return last.pending && last.code == code ? last.text : NULL;
}

static void finalize(void)
{
    if (Py_IsInitialized())
        Py_FinalizeEx();
}

/* "Type: message" of the current exception (cleared), into out. */
static void exception_text(char *out, size_t n, PyObject **value_out)
{
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    const char *tname = type ? ((PyTypeObject *)type)->tp_name : "exception";
    PyObject *s = value ? PyObject_Str(value) : NULL;
    const char *msg = s ? PyUnicode_AsUTF8(s) : NULL;
    if (!msg)
        PyErr_Clear();
    if (msg && *msg)
        snprintf(out, n, "%s: %s", tname, msg);
    else
        snprintf(out, n, "%s", tname);
    Py_XDECREF(s);
    Py_XDECREF(type);
    Py_XDECREF(tb);
    if (value_out)
        *value_out = value;
    else
        Py_XDECREF(value);
}

_Noreturn static void fail(const char *file, uint32_t line, uint32_t col, const char *format, ...)
    __attribute__((format(printf, 4, 5)));

_Noreturn static void fail(const char *file, uint32_t line, uint32_t col, const char *format, ...)
{
    char message[2048];
    va_list args;
    va_start(args, format);
    vsnprintf(message, sizeof message, format, args);
    va_end(args);
    ksrt_runtime_error(file, line, col, message);
}

static void start(const char *file, uint32_t line, uint32_t col)
{
    if (Py_IsInitialized())
        return;
    PyConfig config;
    PyConfig_InitIsolatedConfig(&config);
    config.install_signal_handlers = 0;
    PyStatus status = Py_InitializeFromConfig(&config);
    PyConfig_Clear(&config);
    if (PyStatus_Exception(status))
        fail(file, line, col, "cannot start the Python interpreter: %s",
             status.err_msg ? status.err_msg : "unknown error");
    rt_throw_detail = throw_detail;
    atexit(finalize);
}

/* The module `name`, created from `source` on first use; its file's directory goes on sys.path
 * so that it can import its neighbours when they are there. */
static PyObject *module_of(const char *file, uint32_t line, uint32_t col, const char *name, const char *path,
                           const char *source)
{
    for (struct py_module *m = modules; m; m = m->next)
        if (strcmp(m->name, name) == 0)
            return m->module;
    const char *slash = strrchr(path, '/');
    if (slash) {
        PyObject *dir = PyUnicode_DecodeFSDefaultAndSize(path, slash - path);
        PyObject *sys_path = PySys_GetObject("path");
        if (dir && sys_path && PyList_Insert(sys_path, 0, dir) != 0)
            PyErr_Clear();
        Py_XDECREF(dir);
    }
    PyObject *code = Py_CompileString(source, path, Py_file_input);
    PyObject *module = code ? PyImport_ExecCodeModuleEx(name, code, path) : NULL;
    Py_XDECREF(code);
    if (!module) {
        char why[1024];
        exception_text(why, sizeof why, NULL);
        fail(file, line, col, "cannot load the Python module %s (%s): %s", name, path, why);
    }
    struct py_module *m = rt_zalloc(sizeof *m);
    m->name = strdup(name);
    m->module = module;
    m->next = modules;
    modules = m;
    return module;
}

/* ---- values ---- */

static unsigned long number(const char **sig)
{
    char *end;
    unsigned long n = strtoul(*sig, &end, 10);
    *sig = end;
    return n;
}

/* The KernelScript spelling of the descriptor at *sig, for messages. */
static void spelling(const char *sig, char *out, size_t n)
{
    const char *s = sig + 1;
    switch (sig[0]) {
    case 'i':
    case 'u':
        snprintf(out, n, "%c%lu", sig[0], 8 * number(&s));
        return;
    case 'b':
        snprintf(out, n, "bool");
        return;
    case 'c':
        snprintf(out, n, "char");
        return;
    case 's':
        snprintf(out, n, "str(%lu)", number(&s));
        return;
    case 'a':
        snprintf(out, n, "char[%lu]", number(&s));
        return;
    default:
        snprintf(out, n, "struct");
    }
}

static void skip(const char **sig)
{
    char c = *(*sig)++;
    if (c == 'i' || c == 'u' || c == 's' || c == 'a') {
        number(sig);
    } else if (c == '{') {
        int depth = 1;
        while (**sig && depth) {
            if (**sig == '{')
                depth++;
            else if (**sig == '}')
                depth--;
            (*sig)++;
        }
    }
}

static PyObject *to_python(const char **sig, const uint8_t *p)
{
    char c = *(*sig)++;
    switch (c) {
    case 'i':
    case 'u': {
        unsigned long size = number(sig);
        uint64_t raw = 0;
        memcpy(&raw, p, size);
        if (c == 'u')
            return PyLong_FromUnsignedLongLong(raw);
        int shift = (int)(64 - 8 * size);
        return PyLong_FromLongLong((int64_t)(raw << shift) >> shift);
    }
    case 'b':
        return PyBool_FromLong(p[0] != 0);
    case 'c':
        return PyUnicode_DecodeLatin1((const char *)p, 1, NULL);
    case 's':
    case 'a': {
        unsigned long size = number(sig);
        return PyUnicode_DecodeUTF8((const char *)p, (Py_ssize_t)strnlen((const char *)p, size), "surrogateescape");
    }
    case '{': {
        number(sig);
        PyObject *dict = PyDict_New();
        while (dict && **sig == ',') {
            (*sig)++;
            const char *at = strchr(*sig, '@');
            PyObject *key = PyUnicode_FromStringAndSize(*sig, at - *sig);
            *sig = at + 1;
            unsigned long off = number(sig);
            (*sig)++; /* ':' */
            PyObject *v = to_python(sig, p + off);
            if (!key || !v || PyDict_SetItem(dict, key, v) != 0) {
                Py_XDECREF(key);
                Py_XDECREF(v);
                Py_DECREF(dict);
                return NULL;
            }
            Py_DECREF(key);
            Py_DECREF(v);
        }
        (*sig)++; /* '}' */
        return dict;
    }
    }
    PyErr_SetString(PyExc_SystemError, "ksc: bad Python call signature");
    return NULL;
}

static const char *type_name(PyObject *o)
{
    return Py_TYPE(o)->tp_name;
}

/* Converts `o` into *p as the descriptor at *sig says; false with `why` set when it cannot. */
static bool from_python(const char **sig, PyObject *o, uint8_t *p, char *why, size_t n)
{
    const char *start = *sig;
    char want[64];
    spelling(start, want, sizeof want);
    char c = *(*sig)++;
    switch (c) {
    case 'i':
    case 'u': {
        unsigned long size = number(sig);
        if (!PyLong_Check(o)) {
            snprintf(why, n, "a %s, not an integer (%s)", type_name(o), want);
            return false;
        }
        int overflow = 0;
        long long s = PyLong_AsLongLongAndOverflow(o, &overflow);
        bool fits;
        uint64_t raw;
        if (overflow > 0 && c == 'u') {
            unsigned long long u = PyLong_AsUnsignedLongLong(o);
            fits = !PyErr_Occurred() && (size == 8 || u < (1ULL << (8 * size)));
            PyErr_Clear();
            raw = u;
        } else if (overflow) {
            fits = false;
            raw = 0;
        } else if (c == 'u') {
            fits = s >= 0 && (size == 8 || (unsigned long long)s < (1ULL << (8 * size)));
            raw = (uint64_t)s;
        } else {
            long long lo = size == 8 ? LLONG_MIN : -(1LL << (8 * size - 1));
            long long hi = size == 8 ? LLONG_MAX : (1LL << (8 * size - 1)) - 1;
            fits = s >= lo && s <= hi;
            raw = (uint64_t)s;
        }
        if (!fits) {
            PyObject *text = PyObject_Str(o);
            snprintf(why, n, "%s, which does not fit %s", text ? PyUnicode_AsUTF8(text) : "an integer", want);
            Py_XDECREF(text);
            PyErr_Clear();
            return false;
        }
        memcpy(p, &raw, size);
        return true;
    }
    case 'b':
        if (!PyBool_Check(o) && !PyLong_Check(o)) {
            snprintf(why, n, "a %s, not a bool", type_name(o));
            return false;
        }
        p[0] = (uint8_t)(PyObject_IsTrue(o) == 1);
        return true;
    case 'c':
        if (PyUnicode_Check(o) && PyUnicode_GetLength(o) == 1 && PyUnicode_ReadChar(o, 0) < 256) {
            p[0] = (uint8_t)PyUnicode_ReadChar(o, 0);
            return true;
        }
        snprintf(why, n, "a %s, not a one-character string (char)", type_name(o));
        return false;
    case 's':
    case 'a': {
        unsigned long size = number(sig);
        /* A str(N) keeps its NUL; a char[N] may use all N bytes. */
        unsigned long room = c == 's' ? size - 1 : size;
        PyObject *bytes = PyUnicode_Check(o) ? PyUnicode_AsEncodedString(o, "utf-8", "surrogateescape") : NULL;
        if (!bytes) {
            PyErr_Clear();
            snprintf(why, n, "a %s, not a string (%s)", type_name(o), want);
            return false;
        }
        Py_ssize_t len = PyBytes_GET_SIZE(bytes);
        if ((unsigned long)len > room || memchr(PyBytes_AS_STRING(bytes), 0, (size_t)len)) {
            snprintf(why, n, "a string of %zd bytes, which does not fit %s (at most %lu bytes, no NUL)", len, want,
                     room);
            Py_DECREF(bytes);
            return false;
        }
        memset(p, 0, size);
        memcpy(p, PyBytes_AS_STRING(bytes), (size_t)len);
        Py_DECREF(bytes);
        return true;
    }
    case '{': {
        unsigned long size = number(sig);
        if (!PyMapping_Check(o) || PyUnicode_Check(o) || PyBytes_Check(o)) {
            snprintf(why, n, "a %s, not a dict (struct)", type_name(o));
            return false;
        }
        memset(p, 0, size);
        while (**sig == ',') {
            (*sig)++;
            const char *at = strchr(*sig, '@');
            char field[256];
            snprintf(field, sizeof field, "%.*s", (int)(at - *sig), *sig);
            *sig = at + 1;
            unsigned long off = number(sig);
            (*sig)++; /* ':' */
            PyObject *v = PyMapping_GetItemString(o, field);
            if (!v) {
                /* A missing field stays zero. */
                PyErr_Clear();
                skip(sig);
                continue;
            }
            int k = snprintf(why, n, "field %s: ", field);
            size_t used = k > 0 && (size_t)k < n ? (size_t)k : 0;
            bool ok = from_python(sig, v, p + off, why + used, n - used);
            Py_DECREF(v);
            if (!ok)
                return false;
        }
        (*sig)++; /* '}' */
        return true;
    }
    }
    snprintf(why, n, "an unknown signature");
    return false;
}

/* The code a Python exception throws: its integer `code` attribute when it has a non-zero one
 * (SystemExit(3), or `class Denied(Exception): code = 13`), else 1. */
static int64_t throw_code(PyObject *value)
{
    int64_t code = 1;
    PyObject *attr = value ? PyObject_GetAttrString(value, "code") : NULL;
    if (attr && PyLong_Check(attr) && !PyBool_Check(attr)) {
        int overflow = 0;
        long long c = PyLong_AsLongLongAndOverflow(attr, &overflow);
        if (!overflow && c != 0 && !PyErr_Occurred())
            code = c;
    }
    Py_XDECREF(attr);
    PyErr_Clear();
    return code;
}

int64_t ksrt_py_call(const char *file, uint32_t line, uint32_t col, const char *module, const char *path,
                     const char *source, const char *func, const char *sig, ...)
{
    start(file, line, col);
    PyObject *m = module_of(file, line, col, module, path, source);
    PyObject *f = PyObject_GetAttrString(m, func);
    if (!f || !PyCallable_Check(f)) {
        PyErr_Clear();
        Py_XDECREF(f);
        fail(file, line, col, "the Python module %s (%s) has no function %s", module, path, func);
    }
    va_list args;
    va_start(args, sig);
    Py_ssize_t n = 0;
    for (const char *s = sig; *s != '>'; n++) {
        skip(&s);
        if (*s == ' ')
            s++;
    }
    PyObject *tuple = PyTuple_New(n);
    const char *s = sig;
    for (Py_ssize_t i = 0; tuple && i < n; i++) {
        const uint8_t *p = va_arg(args, const uint8_t *);
        PyObject *v = to_python(&s, p);
        if (!v) {
            char why[1024];
            exception_text(why, sizeof why, NULL);
            fail(file, line, col, "%s.%s: cannot convert argument %zd: %s", module, func, i + 1, why);
        }
        PyTuple_SET_ITEM(tuple, i, v);
        if (*s == ' ')
            s++;
    }
    s++; /* '>' */
    uint8_t *result = *s != 'v' ? va_arg(args, uint8_t *) : NULL;
    va_end(args);
    if (!tuple) {
        char why[1024];
        exception_text(why, sizeof why, NULL);
        fail(file, line, col, "%s.%s: %s", module, func, why);
    }
    PyObject *ret = PyObject_CallObject(f, tuple);
    Py_DECREF(tuple);
    Py_DECREF(f);
    if (!ret) {
        PyObject *value = NULL;
        char why[900];
        exception_text(why, sizeof why, &value);
        int64_t code = throw_code(value);
        Py_XDECREF(value);
        last.pending = true;
        last.code = code;
        snprintf(last.text, sizeof last.text, "Python exception in %s.%s: %s", module, func, why);
        return code;
    }
    last.pending = false;
    if (result) {
        char why[1024];
        const char *rs = s;
        bool ok = from_python(&rs, ret, result, why, sizeof why);
        Py_DECREF(ret);
        if (!ok)
            fail(file, line, col, "%s.%s returned %s", module, func, why);
    } else {
        Py_DECREF(ret);
    }
    return 0;
}
