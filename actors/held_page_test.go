package actors

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"testing"

	"github.com/stretchr/testify/assert"
)

// The n first entries after an id, chosen on a heap, are exactly those a full sort gives,
// for every n and starting point.
func TestHeldAfterFirstN(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var h heldSpecs
	var ids []string
	for range 2000 {
		id := fmt.Sprintf("id-%08x", rng.Uint32())
		if !slices.Contains(ids, id) {
			ids = append(ids, id)
			tags := map[string]string{}
			if rng.IntN(3) == 0 {
				tags["k"] = "v"
			}
			h.set(id, &spec{ConnectArgs: ConnectArgs{URL: "ws://x/", Tags: tags}})
		}
	}
	sort.Strings(ids)
	for range 200 {
		after := ""
		if rng.IntN(4) > 0 {
			after = ids[rng.IntN(len(ids))]
		}
		var filter map[string]string
		if rng.IntN(3) == 0 {
			filter = map[string]string{"k": "v"}
		}
		n := []int{0, 1, 7, 500, 5000}[rng.IntN(5)]
		var want []string
		for _, e := range h.after(after, filter, 0) {
			want = append(want, e.id)
		}
		if n > 0 && len(want) > n {
			want = want[:n]
		}
		var got []string
		for _, e := range h.after(after, filter, n) {
			got = append(got, e.id)
		}
		assert.Equal(t, want, got, "after %q, n %d, filter %v", after, n, filter)
	}
}
