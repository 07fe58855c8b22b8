// Package cuda is mmablate's GPU backend: it drives an NVIDIA GPU from a
// cgo-free Go binary. It owns the run-time loading of the CUDA driver
// (libcuda.so.1), cuBLAS and NVRTC through purego, device memory, the
// project's own CUDA C kernels (kernels.cu, embedded in the binary and
// compiled by NVRTC to a CUBIN for the detected sm_XY on first use), matrix
// products through cuBLAS, and Trainer: a models.Model trained on the GPU
// (the decoder's forward and backward, gradient clipping and AdamW over
// every parameter) with the CPU engine's exact layer definitions. A
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
// Every tensor is float32 in device memory, laid out exactly as the CPU
// engine lays it out (models/engine's doc: row-major, Linear weights
// [out, in]), so weights and AdamW state copy between host and device
// without conversion and a checkpoint is the same safetensors file whichever
// device wrote it. Precision picks the matrix-product arithmetic:
//
//	fp32  CUBLAS_COMPUTE_32F: the CPU engine's arithmetic (parity tests)
//	tf32  CUBLAS_COMPUTE_32F_FAST_TF32: tensor cores, 10-bit mantissa inputs
//	bf16  CUBLAS_COMPUTE_32F_FAST_16BF: tensor cores, bf16 inputs, fp32
//	      accumulation; weights, master copy, optimizer state and every
//	      non-product kernel stay fp32
//
// Attention materialises the [B, H, T, T] score square: q·kᵀ and p·v are
// batched cuBLAS products over (sequence, head), in four causal row blocks
// when T is a multiple of 4 and at least 256 (block r computes only keys
// below its last row, skipping 3/8 of the square), the causal and document
// mask and the softmax are one fused single-pass kernel (one warp per row,
// the row in registers, up to 1024 keys), and so is the softmax backward.
//
// The image path's attention (the ViT's and attnpool's) is the same
// batched-product scheme without a mask: q·kᵀ and p·v over (image, head)
// pairs through pointer arrays, and an unmasked row softmax kernel.
//
// # Threads
//
// A CUDA context is current per OS thread. Every exported method locks its
// goroutine to its thread and makes the device's primary context current
// for its duration, so a Device may be used from any one goroutine at a
// time; it is not safe for concurrent use.
package cuda
