// Package ifprune owns instruction-following pruning (IFPruning, 2025) for
// the decoder's SwiGLU FFNs: a mask predictor that reads an instruction and
// scores every FFN intermediate channel of every layer, the SoftTopK
// relaxation that turns scores into soft structured masks during training,
// the masked SwiGLU that applies a mask per document, and the gathered
// SwiGLU of inference, where the k selected rows of W1 and W3 and columns
// of W2 are copied once per input so the pruned FFN is a smaller dense one.
//
// # Shapes
//
// L decoder layers, F = ffn_hidden channels, k active channels, D the
// decoder width, E the predictor width, P the predictor's hidden size,
// G groups (documents) in a batch, each with its own instruction.
//
// # Predictor
//
// Mode "instruction": each group's instruction tokens go through the
// predictor's own embedding table [V, E] and one residual GELU MLP layer
// (h = e + MLP(e), hidden 2E); h is mean-pooled over the group's tokens
// (an empty instruction pools to the zero vector, so it gets the
// predictor's input-independent default scores) and a two-layer MLP
// E → P → L·F gives the scores. Mode "static": one learned score vector
// [L, F], the same for every input (classic structured pruning).
//
// # SoftTopK
//
// The sigmoid-threshold relaxation: m_i = σ((s_i + τ)/t) with t the
// temperature and τ the unique threshold with Σ m_i = k, found by bisection
// (then polished by Newton steps). Gradients use implicit differentiation
// of Σ m_i = k: with a_i = m_i(1 − m_i)/t,
//
//	∂L/∂s_j = a_j·(g_j − Σ_i a_i g_i / Σ_i a_i),   g = ∂L/∂m.
//
// As t → 0 the mask tends to the hard top-k indicator; k ≥ F gives m ≡ 1
// and no gradient. Inference uses the hard top-k (ties to the lower index).
package ifprune
