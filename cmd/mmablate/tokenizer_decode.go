package main

import (
	"io"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
)

func newTokenizerDecodeCmd() *cobra.Command {
	var path string
	cmd := &cobra.Command{
		Use:   "decode -t tokenizer.json [ID...]",
		Short: "Print the text of token ids",
		Long: `tokenizer decode writes the exact bytes the ids stand for (no newline added),
taking ids from the arguments or, when there are none, from standard input
(separated by spaces, commas or newlines). An id outside the vocabulary is
an error naming its position.

Example:

  mmablate tokenizer decode -t tokenizer.json 0 464 3290
  echo "464, 3290" | mmablate tokenizer decode -t tokenizer.json

Flags:
  -t, --tokenizer  the tokenizer.json (required)`,
		RunE: func(cmd *cobra.Command, args []string) error {
			tok, err := loadTokenizerFlag("decode", path)
			if err != nil {
				return err
			}
			fields := args
			if len(args) == 0 {
				in, err := readStdin(cmd)
				if err != nil {
					return err
				}
				fields = strings.FieldsFunc(in, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\t' || r == '\r' })
			}
			ids := make([]int32, len(fields))
			for i, f := range fields {
				id, err := strconv.ParseInt(f, 10, 32)
				if err != nil {
					return usagef("id %d: %q is not a token id", i, f)
				}
				ids[i] = int32(id)
			}
			text, err := tok.Decode(ids)
			if err != nil {
				return err
			}
			_, err = io.WriteString(cmd.OutOrStdout(), text)
			return err
		},
	}
	cmd.Flags().StringVarP(&path, "tokenizer", "t", "", "the tokenizer.json")
	return cmd
}
