// Package metrics scores image captions exactly as the COCO caption
// evaluation toolkit does (pycocoevalcap, snapshot ad63453, with Stanford
// CoreNLP 3.4.1's PTBTokenizer and Meteor 1.5): BLEU-1..4, METEOR, ROUGE-L and
// CIDEr-D, corpus-level and per image.
//
// Inputs are captions already tokenized the toolkit's way (package
// metrics/ptb); [Score] runs every selected metric over a set of images.
//
// The formulas, as the toolkit computes them (candidate c, references R):
//
//   - BLEU-n (bleu/bleu_scorer.py, option "closest"): clipped n-gram counts
//     correct_k and candidate n-gram counts guess_k, summed over the corpus;
//     BLEU-n = (Π_{k≤n} (correct_k + 1e-15)/(guess_k + 1e-9))^{1/n}, times the
//     brevity penalty exp(1 − r/c) when c < r, with r the reference length
//     closest to the candidate's (ties to the shorter) summed over images.
//     Per-image scores use the image's own counts.
//   - ROUGE-L (rouge/rouge.py): over tokens split on single spaces,
//     P = max_r LCS/|c|, R = max_r LCS/|r|,
//     F = (1+β²)PR/(R + β²P), β = 1.2; the corpus score is the mean.
//   - CIDEr-D (cider/cider_scorer.py): TF-IDF vectors of 1..4-grams with
//     document frequencies over the evaluated images' references and
//     log(#images) as the IDF numerator; per n the clipped cosine
//     Σ min(g_c, g_r)·g_r / (‖g_c‖‖g_r‖), times exp(−Δ²/2σ²) (σ = 6, Δ the
//     difference of the toolkit's "length", which counts bigrams); averaged
//     over n and references, ×10; the corpus score is the mean.
//   - METEOR: package metrics/meteor.
//
// Means are numpy's pairwise sums, so corpus scores agree with the toolkit
// to the last bits, not just to rounding.
package metrics
