// Package lowentropy makes streams of bytes that a healthy but imperfect
// noise source could send: biased, or with each bit leaning on the one
// before, yet with at least the min-entropy that package health's cutoffs
// assume (7 bits per byte, spread over the bits: no k bits of the stream
// take one value with probability above 2^(-7k/8), whatever came before).
// Tests use them to show that the checks do not reject such a source.
package lowentropy

import (
	"fmt"
	"math"
	"math/bits"
	"math/rand/v2"
)

// Model is a source of bytes: each byte is drawn from one of two
// distributions, chosen by the last bit of the byte before. A Model is not
// safe for concurrent use (it remembers that bit); its zero value is not
// usable: make one with a constructor.
type Model struct {
	name  string
	given [2]alias // the byte's distribution, by the last bit of the byte before
	prev  int
}

// alias is a distribution over the 256 byte values as Walker's alias
// table: a uniform column (the draw's top 8 bits), then the column's own
// value if the draw's other 56 bits are below its threshold, else its
// alternative.
type alias struct {
	thr [256]uint64
	alt [256]byte
}

// newAlias builds the table for pr (which sums to 1), by Vose's method.
func newAlias(pr [256]float64) alias {
	var t alias
	var scaled [256]float64
	var small, large []int
	for v, p := range pr {
		scaled[v] = p * 256
		if scaled[v] < 1 {
			small = append(small, v)
		} else {
			large = append(large, v)
		}
	}
	for len(small) > 0 && len(large) > 0 {
		s, l := small[len(small)-1], large[len(large)-1]
		small = small[:len(small)-1]
		t.thr[s], t.alt[s] = uint64(scaled[s]*0x1p56), byte(l)
		scaled[l] -= 1 - scaled[s]
		if scaled[l] < 1 {
			large = large[:len(large)-1]
			small = append(small, l)
		}
	}
	for _, v := range append(small, large...) { // 1 but for rounding
		t.thr[v], t.alt[v] = 1<<56, byte(v)
	}
	return t
}

// Independent is a source of independent bits, each 1 with probability p.
func Independent(p float64) *Model {
	var pr [256]float64
	for v := range 256 {
		k := bits.OnesCount8(uint8(v))
		pr[v] = math.Pow(p, float64(k)) * math.Pow(1-p, float64(8-k))
	}
	return newModel(fmt.Sprintf("independent bits, each 1 with probability %g", p), pr, pr)
}

// Sticky is a source of bits each equal to the bit before it with
// probability same (the first as if a 0 came before it): unbiased, but
// the bits are not independent.
func Sticky(same float64) *Model {
	var pr [2][256]float64
	for prev := range 2 {
		for v := range 256 {
			p, last := 1.0, prev
			for k := 7; k >= 0; k-- { // most significant bit first
				bit := v >> k & 1
				if bit == last {
					p *= same
				} else {
					p *= 1 - same
				}
				last = bit
			}
			pr[prev][v] = p
		}
	}
	return newModel(fmt.Sprintf("each bit equal to the one before with probability %g", same), pr[0], pr[1])
}

// Heavy is a source of independent bytes that are heavy with probability
// p and otherwise uniform over the other 255 values.
func Heavy(heavy byte, p float64) *Model {
	var pr [256]float64
	for v := range 256 {
		pr[v] = (1 - p) / 255
	}
	pr[heavy] = p
	return newModel(fmt.Sprintf("byte %#02x with probability %g, the others uniform", heavy, p), pr, pr)
}

func newModel(name string, given0, given1 [256]float64) *Model {
	return &Model{name: name, given: [2]alias{newAlias(given0), newAlias(given1)}}
}

func (m *Model) String() string { return m.name }

// Fill fills b with the next bytes of the stream, drawn with r.
func (m *Model) Fill(r rand.Source, b []byte) {
	for i := range b {
		t := &m.given[m.prev]
		u := r.Uint64()
		col := byte(u >> 56)
		_, below := bits.Sub64(u&(1<<56-1), t.thr[col], 0) // 1 if below the threshold
		v := t.alt[col] ^ (col^t.alt[col])&-byte(below)
		b[i] = v
		m.prev = int(v & 1)
	}
}

// Edge is the models at the edge of what the assumption admits: bits 1,
// or 0, with probability 0.545 (2^(-7/8) is 0.5453), bits that repeat the
// one before with probability 0.545, and a byte value with probability
// 1/128 (the uniform 1/256 twice over) in every byte lane.
func Edge() []*Model {
	return []*Model{Independent(0.545), Independent(0.455), Sticky(0.545), Heavy(0xa5, 1.0/128)}
}
