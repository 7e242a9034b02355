// Package tensorfile reads and writes the tensor files captionctl meets:
// PyTorch state dicts as torch.save writes them (torchvision's published
// ResNet weights among them) and safetensors files (captionctl's own model
// files and feature shards).
//
// # Formats
//
//   - PyTorch zip (torch ≥ 1.6): a zip archive whose entries share one
//     top-level directory (its name varies: "archive/",
//     "resnet18-f37072fd/"); <dir>/data.pkl is the pickled state dict,
//     <dir>/data/<key> holds the raw bytes of storage <key>, <dir>/byteorder
//     (absent in older files) says "little".
//   - PyTorch legacy (torch < 1.6, or _use_new_zipfile_serialization=False):
//     five things back to back: a pickled magic number
//     0x1950a86a20f9469cfc6c, a pickled protocol version 1001, a pickled
//     sys_info dict, the pickled state dict, a pickled list of storage keys;
//     then, for each key in that order, an int64 element count and the raw
//     storage bytes.
//   - safetensors: an 8-byte little-endian header length n, n bytes of JSON
//     header ({"__metadata__": {string: string}, name: {"dtype", "shape",
//     "data_offsets": [begin, end]}}), then the tensor data, offsets relative
//     to the end of the header.
//
// # Safety
//
// Pickles are read by a restricted unpickler that never executes code. It
// admits only the globals a state dict needs (collections.OrderedDict, the
// torch._utils tensor rebuild functions, the torch.*Storage classes) and
// refuses any other global with a [*ForbiddenGlobalError] naming it. Sizes
// read from a file are checked against the file's length before anything is
// allocated, so a corrupt or hostile header cannot make the reader allocate
// terabytes. Malformed input yields a [*badinput.Error] naming the file and
// the tensor or offset involved.
//
// Tensors are returned C-contiguous with little-endian data whatever the
// strides and storage sharing in the source: a transposed view is copied into
// its own contiguous buffer, two tensors sharing a storage get separate
// copies.
package tensorfile
