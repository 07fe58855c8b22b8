package tokenizer

// symbol is one current piece of a word during merging, in a linked list
// over the word's initial symbols (prev/next are indexes, -1 at the ends).
type symbol struct {
	id         int32
	prev, next int32
	dead       bool
}

// candidate is a possible merge of the symbol at pos with its successor.
type candidate struct {
	rank, pos, id int32
}

// mergeHeap is a min-heap of candidates by (rank, pos): the lowest rank
// merges first and, among equal ranks, the leftmost.
type mergeHeap []candidate

func (h mergeHeap) less(i, j int) bool {
	if h[i].rank != h[j].rank {
		return h[i].rank < h[j].rank
	}
	return h[i].pos < h[j].pos
}

func (h *mergeHeap) push(c candidate) {
	*h = append(*h, c)
	s := *h
	for i := len(s) - 1; i > 0; {
		p := (i - 1) / 2
		if !s.less(i, p) {
			break
		}
		s[i], s[p] = s[p], s[i]
		i = p
	}
}

func (h *mergeHeap) pop() candidate {
	s := *h
	top := s[0]
	n := len(s) - 1
	s[0] = s[n]
	s = s[:n]
	for i := 0; ; {
		l, small := 2*i+1, i
		if l < n && s.less(l, small) {
			small = l
		}
		if r := l + 1; r < n && s.less(r, small) {
			small = r
		}
		if small == i {
			break
		}
		s[i], s[small] = s[small], s[i]
		i = small
	}
	*h = s
	return top
}

// bpe appends the ids of one pre-tokenized word (raw bytes) to dst. It is
// Hugging Face's Word::merge_all: a queue of candidate merges ordered by
// (rank, position); an entry whose pair no longer produces the same id is
// stale and skipped. Bytes without a token become the unknown token (fused
// when fuse_unk is set) or, without one, are dropped.
func (t *Tokenizer) bpe(dst []int32, word string, st *encodeState) []int32 {
	syms := st.syms[:0]
	for i := 0; i < len(word); i++ {
		id := t.byteID[word[i]]
		if id < 0 {
			if t.unkID < 0 {
				continue
			}
			if t.fuseUnk && len(syms) > 0 && syms[len(syms)-1].id == t.unkID {
				continue
			}
			id = t.unkID
		}
		syms = append(syms, symbol{id: id, prev: int32(len(syms)) - 1, next: int32(len(syms)) + 1})
	}
	if len(syms) == 0 {
		st.syms = syms
		return dst
	}
	syms[len(syms)-1].next = -1

	h := st.heap[:0]
	for i := 0; i+1 < len(syms); i++ {
		if m, ok := t.merges[pairKey(syms[i].id, syms[i+1].id)]; ok {
			h.push(candidate{rank: m.rank, pos: int32(i), id: m.id})
		}
	}
	for len(h) > 0 {
		top := h.pop()
		cur := &syms[top.pos]
		if cur.dead || cur.next < 0 {
			continue
		}
		right := syms[cur.next]
		if m, ok := t.merges[pairKey(cur.id, right.id)]; !ok || m.id != top.id {
			continue
		}
		cur.id = top.id
		syms[cur.next].dead = true
		cur.next = right.next
		if right.next >= 0 {
			syms[right.next].prev = top.pos
		}
		if cur.prev >= 0 {
			if m, ok := t.merges[pairKey(syms[cur.prev].id, cur.id)]; ok {
				h.push(candidate{rank: m.rank, pos: cur.prev, id: m.id})
			}
		}
		if cur.next >= 0 {
			if m, ok := t.merges[pairKey(cur.id, syms[cur.next].id)]; ok {
				h.push(candidate{rank: m.rank, pos: top.pos, id: m.id})
			}
		}
	}
	for _, s := range syms {
		if !s.dead {
			dst = append(dst, s.id)
		}
	}
	st.syms, st.heap = syms, h
	return dst
}
