package main

import "github.com/spf13/cobra"

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
