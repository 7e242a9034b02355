// Package infer turns image features into captions with a trained decoder.
//
// This first increment provides batched greedy decoding (Greedy) on the
// decoder's one-step inference path (model.DecoderStepper), used by
// training's validation; the Captioner, beam search and attention maps of
// issue 6 are still to come.
package infer
