// Package data reads captioning datasets and writes captionctl's prepared
// datasets: COCO caption files, Karpathy's dataset_*.json (COCO, Flickr8k,
// Flickr30k) and the built-in synthetic dataset, tokenized with the COCO
// toolkit's tokenizer (metrics/ptb) so that training and scoring see the
// same words.
//
// A prepared dataset directory holds:
//
//   - vocab.json: {"format": "captionctl-vocab/1", "min_word_freq": N,
//     "tokens": [...], "counts": [...]}; ids are positions: <pad>=0,
//     <start>=1, <end>=2, <unk>=3, then the training words seen at least
//     min_word_freq times by descending count, ties in byte order.
//   - train.jsonl, val.jsonl, test.jsonl: one image per line,
//     {"image_id": 1, "file": "val2014/x.jpg", "captions": ["raw", …],
//     "tokens": [["a", "dog"], …]}, file relative to the images root.
//     Training lines hold the captions kept for training; val and test keep
//     every caption as a reference.
//   - refs_<split>.json: the split's captions in the COCO annotation format,
//     for scoring with `captionctl eval --refs`.
//   - manifest.json: inputs with sha256, parameters, counts and every
//     dropped caption or image with its reason.
//
// Every file is written atomically; the same inputs and parameters give
// byte-identical output.
package data
