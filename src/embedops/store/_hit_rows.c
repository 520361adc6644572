/*
 * A search's hits made from the rows the hit cache keeps (store/hit_rows.py).
 *
 * hits(cached, keys, scores, scale) -> list of Hit, or None
 *
 * For each key in step with its score: the cached row (rowkey, id, payload text) of
 * that key, made a Hit whose id is the row's, whose score is score * scale and whose
 * payload is the text (decoded when first read). None when a key is not cached (the
 * caller then reads the rows from SQLite). Hit's slots are filled in where the class
 * lays them out (their member descriptors give the offsets), as Hit.many_from_text does
 * through the descriptors: Hit refuses attribute assignment once made.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

static PyTypeObject *hit_type = NULL;
static Py_ssize_t id_at, score_at, payload_at, text_at;

/* The offset of `type`'s own object slot `name`: a member descriptor of `type` (or of
 * a class it derives from) that lies within its instances. */
static int slot_offset(PyTypeObject *type, const char *name, Py_ssize_t *offset) {
    PyObject *descr = PyObject_GetAttrString((PyObject *)type, name);
    if (descr == NULL) return -1;
    int ok = Py_IS_TYPE(descr, &PyMemberDescr_Type);
    if (ok) {
        PyMemberDescrObject *member = (PyMemberDescrObject *)descr;
        ok = member->d_member->type == T_OBJECT_EX &&
             PyType_IsSubtype(type, PyDescr_TYPE(member)) &&
             member->d_member->offset >= (Py_ssize_t)sizeof(PyObject) &&
             member->d_member->offset + (Py_ssize_t)sizeof(PyObject *) <= type->tp_basicsize;
        if (ok) *offset = member->d_member->offset;
    }
    Py_DECREF(descr);
    if (!ok) PyErr_Format(PyExc_TypeError, "%s.%s is not a slot", type->tp_name, name);
    return ok ? 0 : -1;
}

PyDoc_STRVAR(use_doc, "use(hit_type)\n\nThe class hits() makes (Hit: slots _payload, _text, id, score).");

static PyObject *use(PyObject *Py_UNUSED(module), PyObject *type) {
    if (!PyType_Check(type)) {
        PyErr_SetString(PyExc_TypeError, "a class is expected");
        return NULL;
    }
    PyTypeObject *t = (PyTypeObject *)type;
    Py_ssize_t id, score, payload, text; /* (all found, or nothing changed) */
    if (slot_offset(t, "id", &id) < 0 || slot_offset(t, "score", &score) < 0 ||
        slot_offset(t, "_payload", &payload) < 0 || slot_offset(t, "_text", &text) < 0)
        return NULL;
    id_at = id, score_at = score, payload_at = payload, text_at = text;
    Py_INCREF(type);
    Py_XSETREF(hit_type, t);
    Py_RETURN_NONE;
}

static inline void put(PyObject *obj, Py_ssize_t offset, PyObject *value) {
    PyObject **slot = (PyObject **)((char *)obj + offset);
    Py_XSETREF(*slot, value);
}

PyDoc_STRVAR(hits_doc,
"hits(cached, keys, scores, scale) -> list of Hit, or None\n\n"
"A Hit per key from the dict `cached` (key -> (rowkey, id, payload text)), scored\n"
"score * scale; None when a key is not in `cached`.");

static PyObject *hits(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "hits(cached, keys, scores, scale) takes four arguments");
        return NULL;
    }
    if (hit_type == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "use(Hit) first");
        return NULL;
    }
    PyObject *cached = args[0], *keys = args[1], *scores = args[2];
    if (!PyDict_Check(cached) || !PyList_Check(keys) || !PyList_Check(scores) ||
        PyList_GET_SIZE(keys) != PyList_GET_SIZE(scores)) {
        PyErr_SetString(PyExc_TypeError, "a dict and two lists of one length are expected");
        return NULL;
    }
    double scale = PyFloat_AsDouble(args[3]);
    if (scale == -1.0 && PyErr_Occurred()) return NULL;
    Py_ssize_t n = PyList_GET_SIZE(keys);
    PyObject *out = PyList_New(n);
    if (out == NULL) return NULL;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *row = PyDict_GetItemWithError(cached, PyList_GET_ITEM(keys, i));
        if (row == NULL) {
            Py_DECREF(out);
            if (PyErr_Occurred()) return NULL;
            Py_RETURN_NONE;
        }
        /* (any sequence: tuples, sqlite3.Row; held, since a sequence written in
         * Python runs code that could drop it from the dict) */
        Py_INCREF(row);
        PyObject *id = PySequence_GetItem(row, 1);
        PyObject *text = id ? PySequence_GetItem(row, 2) : NULL;
        Py_DECREF(row);
        double score = text ? PyFloat_AsDouble(PyList_GET_ITEM(scores, i)) : -1.0;
        PyObject *hit = NULL, *value = NULL;
        if (text != NULL && !(score == -1.0 && PyErr_Occurred()))
            hit = hit_type->tp_alloc(hit_type, 0);
        if (hit != NULL) value = PyFloat_FromDouble(score * scale);
        if (value == NULL) {
            Py_XDECREF(id);
            Py_XDECREF(text);
            Py_XDECREF(hit);
            Py_DECREF(out);
            return NULL;
        }
        put(hit, id_at, id);
        put(hit, score_at, value);
        put(hit, payload_at, Py_NewRef(Py_None));
        put(hit, text_at, text);
        PyList_SET_ITEM(out, i, hit);
    }
    return out;
}

static PyMethodDef methods[] = {
    {"use", use, METH_O, use_doc},
    {"hits", (PyCFunction)(void (*)(void))hits, METH_FASTCALL, hits_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_hit_rows",
    "A search's hits made from the hit cache's rows (store/hit_rows.py).", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__hit_rows(void) { return PyModule_Create(&module); }
