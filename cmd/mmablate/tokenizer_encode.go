package main

import (
	"bufio"
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
)

func newTokenizerEncodeCmd() *cobra.Command {
	var path string
	var specials, tokens bool
	cmd := &cobra.Command{
		Use:   "encode -t tokenizer.json [TEXT...]",
		Short: "Print the token ids of a text",
		Long: `tokenizer encode prints the ids of TEXT (the arguments joined by spaces), or of
standard input when there are no arguments, on one line.

Special-token text such as "<|image|>" is ordinary text unless --specials is
given, exactly as the data plane encodes captions and documents.

Example:

  mmablate tokenizer encode -t tokenizer.json "A photo of <|image|> a cat"
  mmablate tokenizer encode -t tokenizer.json --specials --tokens "A photo of <|image|> a cat"
  mmablate tokenizer encode -t tokenizer.json < doc.txt | mmablate tokenizer decode -t tokenizer.json

Flags:
  -t, --tokenizer  the tokenizer.json (required)
  --specials       parse special-token text into special ids
  --tokens         print one "id<TAB>token" line per token (the token's
                   tokenizer.json spelling, quoted) instead of the id line`,
		RunE: func(cmd *cobra.Command, args []string) error {
			tok, err := loadTokenizerFlag("encode", path)
			if err != nil {
				return err
			}
			text := strings.Join(args, " ")
			if len(args) == 0 {
				if text, err = readStdin(cmd); err != nil {
					return err
				}
			}
			ids := tok.Encode(text)
			if specials {
				ids = tok.EncodeWithSpecials(text)
			}
			w := bufio.NewWriter(cmd.OutOrStdout())
			if tokens {
				for _, id := range ids {
					s, _ := tok.Token(id)
					fmt.Fprintf(w, "%d\t%s\n", id, strconv.Quote(s))
				}
				return w.Flush()
			}
			strs := make([]string, len(ids))
			for i, id := range ids {
				strs[i] = strconv.Itoa(int(id))
			}
			fmt.Fprintln(w, strings.Join(strs, " "))
			return w.Flush()
		},
	}
	cmd.Flags().StringVarP(&path, "tokenizer", "t", "", "the tokenizer.json")
	cmd.Flags().BoolVar(&specials, "specials", false, "parse special-token text into special ids")
	cmd.Flags().BoolVar(&tokens, "tokens", false, "print id and token per line")
	return cmd
}
