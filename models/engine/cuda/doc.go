// Package cuda is mmablate's GPU backend: it drives an NVIDIA GPU from a
// cgo-free Go binary. It owns the run-time loading of the CUDA driver
// (libcuda.so.1), cuBLAS, cuBLASLt (optional) and NVRTC through purego,
// device memory, the project's own CUDA C kernels (kernels.cu, embedded in
// the binary and compiled by NVRTC to a CUBIN for the detected sm_XY on
// first use), matrix products through cuBLAS and cuBLASLt, and Trainer: a
// models.Model trained on the GPU (the decoder's forward and backward,
// gradient clipping and AdamW over every parameter) with the CPU engine's
// exact layer definitions. A
// multimodal model's image path runs there too (image.go, connector.go):
// the ViT (patch embedding, position embedding, pre-norm blocks with
// LayerNorm, bidirectional attention and a GELU MLP, final norm; no
// backward when frozen) and each connector (avgpool, mlp, attnpool,
// cabstractor with its 3×3 convolutions as im2col + one product); its
// tokens replace the placeholders' embeddings on the device and their
// gradient feeds its backward there. Only patchify, cutting the images
// into patches, stays on the host. Trainer.IdleTime reports the GPU's idle
// time between steps, timed with CUDA events (gap.go).
//
// Nothing here needs a CUDA toolkit at build time. Where there is no GPU,
// Open fails with an *Error naming the library or driver call that failed
// ("cuda: libcuda.so.1: cannot open shared object file …; is the NVIDIA
// driver installed?"), so callers can print it and stop.
//
// # Numerics
//
// Weights, gradients and AdamW state are float32 in device memory, laid
// out exactly as the CPU engine lays them out (models/engine's doc:
// row-major, Linear weights [out, in]), so they copy between host and
// device without conversion and a checkpoint is the same safetensors file
// whichever device wrote it; so are activations, but for the bf16 copies
// and bf16 outputs listed below. Precision picks the matrix-product
// arithmetic:
//
//	fp32  CUBLAS_COMPUTE_32F: the CPU engine's arithmetic (parity tests)
//	tf32  CUBLAS_COMPUTE_32F_FAST_TF32: tensor cores, 10-bit mantissa inputs
//	bf16  tensor cores with bf16 operands (bf16 copies,
//	      CUBLAS_COMPUTE_32F; the ViT's and the C-Abstractor's too, the
//	      other connectors' fp32 operands under
//	      CUBLAS_COMPUTE_32F_FAST_16BF), fp32 accumulation; products whose
//	      one reader is a kernel that widens its input (q|k, v, h1, h3,
//	      the blocks' branch outputs, ∂L/∂g, the norms' output gradients;
//	      in the ViT q|k|v, the MLP's hidden layer and the gradients
//	      products feed to kernels) write bf16, as PyTorch's autocast
//	      does, the others fp32;
//	      weights (the master copy), gradients, optimizer state, the
//	      residual streams and their gradients stay fp32
//
// In bf16 the decoder's linear products read bf16 copies of their operands
// rather than letting cuBLAS convert fp32 ones on every call
// (CUBLAS_COMPUTE_32F_FAST_16BF, which ran the 16384×2816×1024 product at
// 371–388 TFLOP/s on an H200 against 640–652 with bf16 operands). Each
// copy is made once, by the kernel that produces the value where it can:
// AdamW writes each updated weight's bf16 rounding beside it (Push rounds
// the whole arena), so a weight's forward and both backward products read
// one copy per step; RMSNorm and SwiGLU write their outputs in bf16 as
// well, for the forward and the weight-gradient products (the attention
// output, made by batched products, is cast once where flash attention
// does not write it); the cross-entropy, norm, qk-norm/RoPE and SwiGLU
// backward kernels write their gradients' bf16 copies themselves, and
// products whose output gradient feeds only products write it in bf16
// (wo's, w2's), so no output gradient is cast separately. Every
// rounding is to nearest, ties to even. On an H200 this took the GPU
// reference decoder's step (BenchmarkDecoderStep) from 121.2 to 87.4 ms
// (MFU 15.9% to 22.1%), and its multimodal twin's (BenchmarkImageStep,
// cabstractor) from 140.6 to 107.7 ms. With separate cast kernels after
// RMSNorm and SwiGLU and before every output gradient's products (AdamW
// already writing the weights' copy) the step took 91.5 ms; a cast before
// every product would also round each weight three times a step. The
// decoder's attention products read bf16 operands too (when the head
// width and T are multiples of 8, so every pointer in the batched arrays
// is 16-byte aligned): RoPE writes q and k in bf16 only, the v
// projection and wo's input-gradient product write v and dO in bf16, and
// bf16 forms of the two softmax kernels read the fp32 scores (or dP) and
// write the
// probabilities (or dS) in bf16 only; they are separate kernels because a
// runtime mode test inside the unrolled register loops made the softmax
// slower than the products saved (backward 5.1 → 14.5 ms a step). That
// took the decoder step from 87.9 to 82.4 ms (MFU 21.9% to 23.4%).
//
// The image path in bf16 (image.go's vitForwardH, vitBackwardH; where the
// ViT's head width is a multiple of 8, its width at most 1024 and its
// patches at most 1024) does the same: the ViT's norms write their outputs
// in bf16 only, q|k|v and the MLP's hidden layer come out of cuBLAS in
// bf16 with the bias already in (cuBLASLt's bias epilogue, reading the
// bias's bf16 copy, so the sum is rounded once), the residual stream's
// products add the residual (their C operand) and the bias in the same
// epilogue (without cuBLASLt, a kernel fills C with bias or residual +
// bias and the product runs with beta 1: gemmBF16Bias), GELU reads and
// writes bf16, the backward's input-gradient products write bf16 where a
// kernel or product reads them, and the norms' backward writes the
// residual stream's gradient with its bf16 copy and sums dw and db in the
// same pass (a warp a row, each lane's column partials in registers). The ViT's attention is the flash kernels' bidirectional
// form (reading q, k and v as column blocks of q|k|v, writing dk and dv
// there in bf16, dq added up in fp32 and rounded once), or, for other head
// widths, batched bf16 products with a warp-per-row softmax over score
// rows padded to a multiple of 8. The C-Abstractor's convolutions im2col
// into bf16 columns and col2im from bf16 ones. On an H200 this took the
// image path (BenchmarkImageParts: ViT forward and backward, connector
// forward and backward) from 17.1 to 8.8 ms (of the ViT's 6.9 ms the
// products are 3.1) and the multimodal reference step (BenchmarkImageStep,
// cabstractor) from 64.3 to 55.3 ms, MFU 33.2% to 38.6%. Three changes
// followed: the ViT backward's weight-gradient products and bias sums run
// on a side stream (stream.go), the batch goes up from pinned memory
// without the host waiting (staging in device.go), and the bf16 products
// that are not batched run on the fastest of cuBLASLt's candidates per
// shape (cublaslt.go). `bench train` timed the result at 54.1 ms a step,
// MFU 39.4%. Then the bias epilogue (ViT forward 2.33 → 1.96 ms), the
// one-pass LayerNorm backward (the blocks' norm backwards 0.72 → 0.57 ms)
// and v's gradient written in bf16 by the flash backward (a 0.2 ms cast
// gone): 40.2% on one H200, 39.3–39.6% on another (BenchmarkStepProfile
// ranks what is left, kernel by kernel). Then the memory-bound kernels
// (BenchmarkBandwidthKernels times each alone): the RMSNorm backward as a
// block across the row, a 16-byte chunk a thread (rmsnorm_bwd_cols, 122 →
// 97 µs a call); flash_dot with 16-byte accesses (57 → 39 µs); bf16
// logits from the head product into ce_fused (as autocast's head gives
// them); the C-Abstractor's im2col_h3 and col2im_h3 (105 → 47 and 78 → 41
// µs) and a pooling backward that finds a pixel's cells once (210 → 32
// µs): 41.0–41.5% on three H200s, 40.5% on a fourth.
//
// In bf16 on sm_80 and later, with a head width of 16, 32 or 64, the
// decoder's attention is flash attention (flash.go; FlashAttention-2's
// schedule), two kernels on the tensor cores (mma.sync m16n8k16, ldmatrix,
// cp.async double buffering of 64-row tiles of the bf16 q, k, v and dO in
// shared memory). The forward gives each of a block's 4 warps 32 query
// rows and keeps each row's log-sum-exp (base 2). The backward is one
// kernel with FlashAttention-2's five products per tile pair: a block
// holds 64 keys of one kv head and walks the query tiles of every query
// head sharing it, so dK and dV stay in registers and are written once; it
// recomputes P from the log-sum-exp, stages dS in shared memory and adds
// each warp's dQ share into dq with red.global.add. The row term
// D = rowsum(dO∘O) is read from the bf16 copies, so the fp32 attention
// output and its fp32 gradient do not exist on this path. Scores,
// probabilities and dS never leave registers or shared memory. Tiles
// wholly below the diagonal and within one document run a loop without
// mask arithmetic (an open tile's exponentials are straight-line code: a
// per-element mask test made the compiler branch around every one);
// tiles wholly above it are not visited. No [B, H, T, T] buffer exists,
// and no softmax row has to fit in shared memory (the device tests have
// run T up to 1280). On an H200 the attention parts of the reference step
// went from 28.8 ms (materialised bf16) to 17.6 with the first flash
// kernels and to 9.5 (forward 2.4, backward 7.1) with these;
// TestFlashAttention checks them against a float64 reference.
//
// Otherwise (fp32 and tf32, older GPUs, other head widths) attention
// materialises the [B, H, T, T] score square: q·kᵀ and p·v are
// batched cuBLAS products over (sequence, head), in four causal row blocks
// when T is a multiple of 4 and at least 256 (block r computes only keys
// below its last row, skipping 3/8 of the square), the causal and document
// mask and the softmax are one fused single-pass kernel (one warp per row,
// the row in registers, up to 1024 keys), and so is the softmax backward;
// rows longer than 6144 keys do not fit its shared memory and are refused.
//
// Around the products, bf16 precision keeps no fp32 copy of a value only
// products read (the norms' and SwiGLU's outputs), SwiGLU recomputes σ(h1)
// in its backward rather than saving it, the residual add runs inside the
// next RMSNorm's pass, and the norms' backward writes the residual
// stream's gradient (residual + its own part) with its bf16 copy in one
// pass, so no device copies or separate casts remain there. The w1 and w3
// products write h1 and h3 in bf16 (as PyTorch's autocast keeps them), so
// SwiGLU and its backward read half the bytes; qk-norm and RoPE are one
// pass each way; and the norms read their rows once, with 16-byte loads,
// keeping each lane's share of the row (and of dw) in registers. On an
// H200 these took the reference step from 65.5 to 56.8 ms (the
// elementwise parts 17.3 → 8.5 ms; BenchmarkDecoderStep).
//
// The image path's attention outside bf16 (and attnpool's always) is the
// same batched-product scheme without a mask: q·kᵀ and p·v over (image,
// head) pairs through pointer arrays, and an unmasked row softmax kernel.
//
// # Threads
//
// A CUDA context is current per OS thread. Every exported method locks its
// goroutine to its thread and makes the device's primary context current
// for its duration, so a Device may be used from any one goroutine at a
// time; it is not safe for concurrent use.
package cuda
