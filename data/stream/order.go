package stream

import "math/rand/v2"

// fileInfo is what the order needs from a file's footer: its path and the
// row count of each row group.
type fileInfo struct {
	path      string
	rowGroups []int64
	// imageColumn names the file's image column in errors about images
	// that fail to decode ("images" when empty, the canonical name).
	imageColumn string
}

func (f fileInfo) rows() int64 {
	var n int64
	for _, r := range f.rowGroups {
		n += r
	}
	return n
}

// unit is the smallest piece of work: rows [start, start+n) of one row
// group, start counted from the file's first row. It is a whole row group
// unless there are fewer row groups than ranks.
type unit struct {
	file  int
	rg    int
	start int64
	n     int64
}

// PCG streams: the shard order and the shuffle buffer of an epoch draw from
// separate sequences, so changing the buffer size leaves the shard order
// alone.
func orderRNG(seed int64, epoch int) *rand.Rand {
	return rand.New(rand.NewPCG(uint64(seed), uint64(epoch)<<1))
}

func shuffleRNG(seed int64, epoch int) *rand.Rand {
	return rand.New(rand.NewPCG(uint64(seed), uint64(epoch)<<1|1))
}

// epochUnits returns rank's units for one epoch, in reading order. Every
// rank computes the same permutation (files, then row groups within each
// file) and takes its part of it, so across ranks each row appears exactly
// once. The split is by file when there are at least as many non-empty
// files as ranks, else by row group, else by contiguous row ranges inside
// every row group.
func epochUnits(files []fileInfo, seed int64, epoch, rank, worldSize int) []unit {
	rng := orderRNG(seed, epoch)
	var perFile [][]unit
	nRowGroups := 0
	for _, fi := range rng.Perm(len(files)) {
		f := files[fi]
		starts := make([]int64, len(f.rowGroups))
		var off int64
		for i, n := range f.rowGroups {
			starts[i] = off
			off += n
		}
		var us []unit
		for _, rg := range rng.Perm(len(f.rowGroups)) {
			if f.rowGroups[rg] > 0 {
				us = append(us, unit{file: fi, rg: rg, start: starts[rg], n: f.rowGroups[rg]})
			}
		}
		if len(us) > 0 {
			perFile = append(perFile, us)
			nRowGroups += len(us)
		}
	}
	var out []unit
	switch {
	case len(perFile) >= worldSize:
		for i := rank; i < len(perFile); i += worldSize {
			out = append(out, perFile[i]...)
		}
	case nRowGroups >= worldSize:
		j := 0
		for _, us := range perFile {
			for _, u := range us {
				if j%worldSize == rank {
					out = append(out, u)
				}
				j++
			}
		}
	default:
		for _, us := range perFile {
			for _, u := range us {
				lo := u.n * int64(rank) / int64(worldSize)
				hi := u.n * int64(rank+1) / int64(worldSize)
				if hi > lo {
					out = append(out, unit{file: u.file, rg: u.rg, start: u.start + lo, n: hi - lo})
				}
			}
		}
	}
	return out
}

func totalRows(units []unit) int64 {
	var n int64
	for _, u := range units {
		n += u.n
	}
	return n
}
