// Package eval scores captions: it reads COCO reference and results files,
// checks them, tokenizes every caption as the COCO caption toolkit does and
// runs package metrics over them. Later it also runs a captioner over a
// dataset split to produce the results it scores.
//
// File formats:
//
//   - References: the COCO annotation format,
//     {"images": [{"id": 1, …}, …], "annotations": [{"image_id": 1,
//     "caption": "…", …}, …]}. "images" is optional; the images scored are
//     those of the results file, and each must have at least one annotation.
//   - Results: the COCO results format, [{"image_id": 1, "caption": "…"}, …],
//     exactly one caption per image. Other fields are ignored.
//
// Malformed input is reported as a *badinput.Error naming the file, the line
// and column, and what is wrong.
package eval
