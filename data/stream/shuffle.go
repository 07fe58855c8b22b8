package stream

import (
	"math/rand/v2"

	"github.com/mmablate/mmablate/data"
)

// slotID names one row of an epoch's order: a unit (index into the epoch's
// units) and the row's offset inside it.
type slotID struct {
	unit int
	off  int64
}

// slot is a row travelling through the shuffle buffer: its record, or the
// error the layout reported for it.
type slot struct {
	id  slotID
	row int64 // within the file
	rec *data.Record
	err error
}

// shuffler is a seeded shuffle buffer of up to size rows: once full, each
// new row replaces a uniformly chosen buffered row, which leaves. Its
// choices depend only on the generator and the number of rows seen, never
// on their contents, so a restore can replay it over slot ids alone.
type shuffler struct {
	rng  *rand.Rand
	size int
	buf  []slot
}

func newShuffler(size int, rng *rand.Rand) *shuffler {
	return &shuffler{rng: rng, size: size, buf: make([]slot, 0, size)}
}

// push adds s and returns the row that leaves the buffer, if one does.
func (sh *shuffler) push(s slot) (slot, bool) {
	if sh.size == 0 {
		return s, true
	}
	if len(sh.buf) < sh.size {
		sh.buf = append(sh.buf, s)
		return slot{}, false
	}
	j := sh.rng.IntN(sh.size)
	out := sh.buf[j]
	sh.buf[j] = s
	return out, true
}

// drain removes a random buffered row once the input has ended.
func (sh *shuffler) drain() (slot, bool) {
	n := len(sh.buf)
	if n == 0 {
		return slot{}, false
	}
	j := sh.rng.IntN(n)
	out := sh.buf[j]
	sh.buf[j] = sh.buf[n-1]
	sh.buf[n-1] = slot{}
	sh.buf = sh.buf[:n-1]
	return out, true
}

// fastForward replays the first p rows of the order through sh without
// reading any data. It returns the input cursor (the first row not yet
// pushed) and, for each row still in the buffer, its buffer index: those
// rows must be read again to refill it. Without a buffer whole units are
// skipped arithmetically. The caller checks p against the epoch's rows.
func fastForward(sh *shuffler, units []unit, p int64) (slotID, map[slotID]int) {
	needed := map[slotID]int{}
	if sh.size == 0 {
		for ui, u := range units {
			if p < u.n {
				return slotID{ui, p}, needed
			}
			p -= u.n
		}
		return slotID{len(units), 0}, needed
	}
	var emitted int64
	cursor := slotID{len(units), 0}
	if p == 0 {
		cursor = slotID{0, 0}
	}
input:
	for ui := 0; ui < len(units) && emitted < p; ui++ {
		for off := int64(0); off < units[ui].n; off++ {
			if _, ok := sh.push(slot{id: slotID{ui, off}}); ok {
				emitted++
			}
			if emitted == p {
				cursor = slotID{ui, off + 1}
				if cursor.off == units[ui].n {
					cursor = slotID{ui + 1, 0}
				}
				break input
			}
		}
	}
	for emitted < p {
		if _, ok := sh.drain(); !ok {
			break
		}
		emitted++
	}
	for i, s := range sh.buf {
		needed[s.id] = i
	}
	return cursor, needed
}

// before reports whether a comes before b in the order.
func (a slotID) before(b slotID) bool {
	return a.unit < b.unit || (a.unit == b.unit && a.off < b.off)
}
