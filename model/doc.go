// Package model holds captionctl's networks and their parameters.
//
//   - The frozen image encoder (Encoder): torchvision's ResNet-18, -34,
//     -50, -101 and -152 in inference mode, batch norm folded into the
//     convolutions when the weights are loaded (NewEncoder from a
//     torchvision state dict, RandomEncoder for seeded demo weights). Its
//     output is the last stage's feature map average-pooled to grid×grid,
//     [n, grid², channels], position y·grid + x.
//   - The caption decoder (DecoderParams, DecoderConfig): Show, Attend and
//     Tell's soft-attention LSTM, or the Show-and-Tell baseline, defined once
//     as a single decoder step on a gorgonia graph. Training unrolls the
//     step with teacher forcing (NewDecoderTrainGraph); inference runs it one
//     step at a time (NewDecoderStepper). The equations, with shapes, are in
//     the DecoderParams documentation.
//
// Parameters are kept apart from graph nodes and initialised from explicit
// seeded random streams, never from gorgonia's clock-seeded initialisers.
// Matrix products go through a pure-Go kernel by default and through
// OpenBLAS with -tags openblas (cgo, Debian libopenblas-dev).
package model
