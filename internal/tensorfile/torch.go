package tensorfile

import (
	"errors"
	"fmt"
	"math/big"
)

// storageRef is a torch storage named by a persistent id: the raw bytes of
// numel elements of dtype, found under key (a zip record name or a legacy
// storage key). In legacy files a storage may be a view: elements
// [viewOffset, viewOffset+numel) of the root storage.
type storageRef struct {
	key        string
	dtype      DType
	rootNumel  int64 // elements in the root storage as recorded
	viewOffset int64 // elements; 0 unless a legacy view
	numel      int64 // elements in this (view of the) storage
	refs       int   // tensors built on it

	data []byte // filled in once the storage is read
}

// tensorRef is a tensor as _rebuild_tensor_v2 describes it: a strided view
// of a storage.
type tensorRef struct {
	storage *storageRef
	offset  int64 // elements
	size    []int
	stride  []int64
}

// call performs the few calls a state dict's pickle may make.
func call(f, args any) (any, error) {
	g, ok := f.(pyGlobal)
	if !ok {
		return nil, fmt.Errorf("cannot call %s", typeName(f))
	}
	a, ok := args.(pyTuple)
	if !ok {
		return nil, fmt.Errorf("%s: arguments are %s, not a tuple", g, typeName(args))
	}
	switch g.String() {
	case "collections.OrderedDict":
		d := newDict()
		if len(a) == 0 {
			return d, nil
		}
		l, ok := a[0].(*pyList)
		if len(a) != 1 || !ok {
			return nil, fmt.Errorf("collections.OrderedDict%s: unsupported arguments", describe(a))
		}
		for _, item := range l.items {
			kv, ok := item.(pyTuple)
			if !ok || len(kv) != 2 {
				return nil, errors.New("collections.OrderedDict: items must be pairs")
			}
			if err := d.set(kv[0], kv[1]); err != nil {
				return nil, err
			}
		}
		return d, nil
	case "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_tensor":
		// (storage, storage_offset, size, stride[, requires_grad,
		// backward_hooks[, metadata]])
		if len(a) < 4 || len(a) > 7 {
			return nil, fmt.Errorf("%s with %d arguments", g, len(a))
		}
		return rebuildTensor(a[0], a[1], a[2], a[3])
	case "torch._utils._rebuild_parameter", "torch._utils._rebuild_parameter_with_state":
		// (data, requires_grad, backward_hooks[, state])
		if len(a) < 1 {
			return nil, fmt.Errorf("%s without arguments", g)
		}
		t, ok := a[0].(*tensorRef)
		if !ok {
			return nil, fmt.Errorf("%s of %s, not a tensor", g, typeName(a[0]))
		}
		return t, nil
	case "torch._tensor._rebuild_from_type_v2":
		// (func, new_type, args, state): a Tensor subclass or a tensor
		// with attributes; the attributes do not matter here.
		if len(a) != 4 {
			return nil, fmt.Errorf("%s with %d arguments", g, len(a))
		}
		typ, ok := a[1].(pyGlobal)
		if !ok || (typ.name != "Tensor" && typ.name != "Parameter") {
			return nil, fmt.Errorf("%s: unsupported tensor type %s", g, describe(a[1]))
		}
		inner, ok := a[0].(pyGlobal)
		if !ok || inner.module != "torch._utils" {
			return nil, fmt.Errorf("%s: unsupported rebuild function %s", g, describe(a[0]))
		}
		v, err := call(inner, a[2])
		if err != nil {
			return nil, err
		}
		if _, ok := v.(*tensorRef); !ok {
			return nil, fmt.Errorf("%s: %s did not give a tensor", g, inner)
		}
		return v, nil
	}
	return nil, fmt.Errorf("cannot call %s in a state dict", g)
}

func rebuildTensor(storage, offset, size, stride any) (*tensorRef, error) {
	s, ok := storage.(*storageRef)
	if !ok {
		return nil, fmt.Errorf("tensor storage is %s", typeName(storage))
	}
	off, ok := smallInt(offset)
	if !ok || off < 0 {
		return nil, fmt.Errorf("bad storage offset %s", describe(offset))
	}
	sz, ok1 := intTuple(size)
	st, ok2 := intTuple(stride)
	if !ok1 || !ok2 || len(sz) != len(st) {
		return nil, fmt.Errorf("bad size %s or stride %s", describe(size), describe(stride))
	}
	shape := make([]int, len(sz))
	for i, d := range sz {
		if d < 0 || d > maxElements || st[i] < 0 {
			return nil, fmt.Errorf("bad size %s or stride %s", describe(size), describe(stride))
		}
		shape[i] = int(d)
	}
	return &tensorRef{storage: s, offset: off, size: shape, stride: st}, nil
}

// smallInt returns v as an int64 if it is a Python int (or bool) that fits.
func smallInt(v any) (int64, bool) {
	switch x := v.(type) {
	case int64:
		return x, true
	case bool:
		if x {
			return 1, true
		}
		return 0, true
	case *big.Int:
		if x.IsInt64() {
			return x.Int64(), true
		}
	}
	return 0, false
}

func intTuple(v any) ([]int64, bool) {
	var items []any
	switch x := v.(type) {
	case pyTuple:
		items = x
	case *pyList:
		items = x.items
	default:
		return nil, false
	}
	out := make([]int64, len(items))
	for i, e := range items {
		n, ok := smallInt(e)
		if !ok {
			return nil, false
		}
		out[i] = n
	}
	return out, true
}

// storagePID decodes a storage persistent id:
//
//	zip:    ('storage', storage_type, key, location, numel)
//	legacy: ('storage', storage_type, root_key, location, numel, view_metadata)
//
// where view_metadata is None or (view_key, offset, view_numel). Storages
// are shared by key through seen.
func storagePID(pid any, seen map[string]*storageRef) (*storageRef, error) {
	t, ok := pid.(pyTuple)
	if ok && len(t) > 0 && t[0] != "storage" {
		return nil, fmt.Errorf("unsupported persistent id %s (only tensors are supported; save model.state_dict(), not the model)", describe(t[0]))
	}
	if !ok || len(t) < 5 || len(t) > 6 {
		return nil, fmt.Errorf("unsupported persistent id %s", describe(pid))
	}
	g, ok := t[1].(pyGlobal)
	dtype := storageDTypes[g.name]
	if !ok || dtype == "" {
		return nil, fmt.Errorf("unsupported storage type %s", describe(t[1]))
	}
	key, ok := t[2].(string)
	numel, ok2 := smallInt(t[4])
	if !ok || !ok2 || numel < 0 || numel > maxElements {
		return nil, fmt.Errorf("bad storage persistent id %s", describe(pid))
	}
	if _, ok := t[3].(string); !ok {
		return nil, fmt.Errorf("bad storage location %s", describe(t[3]))
	}
	root := seen[key]
	if root == nil {
		root = &storageRef{key: key, dtype: dtype, rootNumel: numel, numel: numel}
		seen[key] = root
	} else if root.dtype != dtype || root.rootNumel != numel {
		return nil, fmt.Errorf("storage %s seen as %d×%s and as %d×%s", key, root.rootNumel, root.dtype, numel, dtype)
	}
	if len(t) == 5 || t[5] == nil {
		return root, nil
	}
	view, ok := t[5].(pyTuple)
	if !ok || len(view) != 3 {
		return nil, fmt.Errorf("bad storage view %s", describe(t[5]))
	}
	viewKey, ok := view[0].(string)
	off, ok1 := smallInt(view[1])
	n, ok2 := smallInt(view[2])
	if !ok || !ok1 || !ok2 || off < 0 || n < 0 || off > numel || n > numel-off {
		return nil, fmt.Errorf("bad storage view %s of %d elements", describe(view), numel)
	}
	if v := seen["view:"+viewKey]; v != nil {
		return v, nil
	}
	v := &storageRef{key: key, dtype: dtype, rootNumel: numel, viewOffset: off, numel: n}
	seen["view:"+viewKey] = v
	return v, nil
}

// stateDict checks that the unpickled object is a state dict (str →
// tensor) and returns its entries in order.
func stateDict(obj any) ([]string, []*tensorRef, error) {
	d, ok := obj.(*pyDict)
	if !ok {
		return nil, nil, fmt.Errorf("the pickle holds %s, not a state dict (str → tensor); save model.state_dict()", typeName(obj))
	}
	names := make([]string, len(d.keys))
	refs := make([]*tensorRef, len(d.keys))
	for i, k := range d.keys {
		name, ok := k.(string)
		if !ok {
			return nil, nil, fmt.Errorf("state dict key %s is not a string", describe(k))
		}
		t, ok := d.vals[i].(*tensorRef)
		if !ok {
			return nil, nil, fmt.Errorf("state dict entry %q holds %s, not a tensor", name, typeName(d.vals[i]))
		}
		names[i], refs[i] = name, t
		t.storage.refs++ // per entry: one tensor may sit under two names
	}
	return names, refs, nil
}

// materialize copies tensor t out of its storage's bytes into a fresh
// C-contiguous tensor. A storage used by one contiguous tensor that covers
// all of it is handed over without a copy.
func materialize(name string, t *tensorRef) (*Tensor, error) {
	s := t.storage
	es := int64(s.dtype.Size())
	data := s.data
	if int64(len(data)) != s.numel*es {
		return nil, fmt.Errorf("tensor %q: storage %s has %d bytes, want %d", name, s.key, len(data), s.numel*es)
	}
	n, _ := numElements(t.size)
	out := &Tensor{Name: name, DType: s.dtype, Shape: t.size}
	if n == 0 {
		out.Data = []byte{}
		return out, nil
	}
	// Highest element index the view touches, bounds-checked without
	// overflow: every term must fit in the storage.
	if t.offset >= s.numel {
		return nil, fmt.Errorf("tensor %q: storage offset %d past its storage of %d elements", name, t.offset, s.numel)
	}
	last := t.offset
	for i, d := range t.size {
		if d == 1 {
			continue
		}
		if t.stride[i] > 0 && int64(d-1) > (s.numel-1)/t.stride[i] {
			return nil, fmt.Errorf("tensor %q: size %v with stride %v runs past its storage of %d elements", name, t.size, t.stride, s.numel)
		}
		last += int64(d-1) * t.stride[i]
		if last >= s.numel {
			break
		}
	}
	if last >= s.numel {
		return nil, fmt.Errorf("tensor %q: offset %d, size %v, stride %v run past its storage of %d elements", name, t.offset, t.size, t.stride, s.numel)
	}
	if n > uint64(s.numel) {
		return nil, fmt.Errorf("tensor %q: %d elements from a storage of %d (an expanded view); save t.contiguous() instead", name, n, s.numel)
	}
	if contiguous(t.size, t.stride) {
		if s.refs == 1 && t.offset == 0 && n == uint64(s.numel) {
			out.Data, s.data = data, nil
			return out, nil
		}
		out.Data = append([]byte(nil), data[t.offset*es:(t.offset+int64(n))*es]...)
		return out, nil
	}
	out.Data = make([]byte, int64(n)*es)
	index := make([]int, len(t.size))
	src := t.offset
	for dst := int64(0); dst < int64(n)*es; dst += es {
		copy(out.Data[dst:dst+es], data[src*es:])
		// Advance the multi-index, last dimension fastest.
		for k := len(index) - 1; k >= 0; k-- {
			index[k]++
			src += t.stride[k]
			if index[k] < t.size[k] {
				break
			}
			src -= int64(index[k]) * t.stride[k]
			index[k] = 0
		}
	}
	return out, nil
}

// contiguous reports whether stride is the C-order stride of size (dims of
// size 1 may have any stride).
func contiguous(size []int, stride []int64) bool {
	want := int64(1)
	for i := len(size) - 1; i >= 0; i-- {
		if size[i] != 1 && stride[i] != want {
			return false
		}
		want *= int64(size[i])
	}
	return true
}
