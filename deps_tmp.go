//go:build mmablate_deps

// Temporary: pins the chosen modules in go.mod while packages are being
// written in parallel. Deleted once every module is imported for real.
package deps

import (
	_ "github.com/apache/arrow-go/v18/arrow/array"
	_ "github.com/apache/arrow-go/v18/arrow/memory"
	_ "github.com/apache/arrow-go/v18/parquet/pqarrow"
	_ "github.com/disintegration/imaging"
	_ "github.com/parquet-go/parquet-go"
	_ "github.com/parquet-go/parquet-go/compress/zstd"
	_ "github.com/spf13/cobra"
	_ "golang.org/x/image/webp"
	_ "golang.org/x/term"
	_ "gonum.org/v1/gonum/blas/blas32"
	_ "gonum.org/v1/gonum/blas/blas64"
	_ "gonum.org/v1/netlib/blas/netlib"
	_ "gopkg.in/yaml.v3"
)
