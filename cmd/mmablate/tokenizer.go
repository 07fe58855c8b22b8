package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/mmablate/mmablate/data/tokenizer"
)

func newTokenizerCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "tokenizer",
		Short: "Train, apply and inspect the byte-level BPE tokenizer",
		Long: `mmablate's tokenizer is a GPT-2 style byte-level BPE (package data/tokenizer)
stored as a Hugging Face tokenizer.json, so the same file works in Python.
Special tokens <|image|>, <|endofchunk|>, <|bos|>, <|eos|>, <|pad|> get ids
0-4 when mmablate trains the vocabulary.

  mmablate tokenizer train --vocab 8192 --out tokenizer.json INPUT...
  mmablate tokenizer encode -t tokenizer.json "some text"
  mmablate tokenizer decode -t tokenizer.json 464 3290 318`,
	}
	cmd.AddCommand(newTokenizerTrainCmd(), newTokenizerEncodeCmd(), newTokenizerDecodeCmd())
	return cmd
}

// loadTokenizerFlag loads the --tokenizer file of "tokenizer verb"; a
// missing flag is misuse.
func loadTokenizerFlag(verb, path string) (*tokenizer.Tokenizer, error) {
	if path == "" {
		return nil, usagef("tokenizer %s needs --tokenizer (see --help)", verb)
	}
	return tokenizer.LoadFile(path)
}

// readStdin returns all of cmd's standard input, where encode and decode
// read when given no arguments.
func readStdin(cmd *cobra.Command) (string, error) {
	b, err := io.ReadAll(cmd.InOrStdin())
	if err != nil {
		return "", fmt.Errorf("read standard input: %w", err)
	}
	return string(b), nil
}
