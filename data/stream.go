package data

import "context"

// Stream yields Samples in a deterministic order. Next returns io.EOF at
// the end of each epoch; calling Next again starts the next epoch with a
// new seeded order. What to do at an epoch boundary (repeat or stop) is the
// caller's policy (see mixer).
type Stream interface {
	Next(ctx context.Context) (Sample, error)
	// State describes the position after the last Sample returned by Next
	// (not what was prefetched).
	State() State
	// Restore positions a fresh stream at s. It must be called before the
	// first Next, and fails naming any shard that changed since s was taken.
	Restore(s State) error
	Close() error
}

// State is a stream's resumable position, serialised as JSON in training
// checkpoints. Order is recomputed from these fields, so the position is a
// count, not a file offset.
type State struct {
	Seed     int64 `json:"seed"`
	Epoch    int   `json:"epoch"`
	Consumed int64 `json:"consumed"` // samples returned in this epoch, skips excluded
	// Position counts the rows of this epoch's order passed so far, skipped
	// rows included, so a restore fast-forwards without decoding anything
	// (which rows fail to decode is only known by decoding them).
	Position  int64 `json:"position"`
	Rank      int   `json:"rank"`
	WorldSize int   `json:"world_size"`
	// Shards identifies the files the order was computed from (name and
	// rows), so a restore against a changed dataset fails clearly.
	Shards []ShardID `json:"shards"`
	// Skipped counts rows dropped with on_error=skip, by reason.
	Skipped SkipCounts `json:"skipped,omitempty"`
}

// ShardID identifies one file of a dataset for State checks.
type ShardID struct {
	Name string `json:"name"`
	Rows int64  `json:"rows"`
}
