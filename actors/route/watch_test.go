package route

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

const (
	self = "10.0.0.1:5002"
	b    = "10.0.0.2:5002"
	c    = "10.0.0.3:5002"
)

func never(string) bool { return false }

// Ensure a round asks each holder once about its own connections, looks at this instance's
// sessions for its own, and Locates the rest without asking anyone.
func TestPlanCheck(t *testing.T) {
	members := map[string]string{"x": "", "h1": self, "b2": b, "b1": b, "c1": c}
	tests := []struct {
		name   string
		canAsk bool
		gone   func(string) bool
		want   Check
	}{
		{"every holder asked", true, never, Check{
			Here: []string{"h1"}, Ask: map[string][]string{b: {"b1", "b2"}, c: {"c1"}}, Unheld: []string{"x"},
		}},
		{"holder counted as gone: its connections are not asked about", true, func(a string) bool { return a == c }, Check{
			Here: []string{"h1"}, Ask: map[string][]string{b: {"b1", "b2"}}, Unheld: []string{"c1", "x"},
		}},
		{"other instances cannot be called: Locate theirs", false, never, Check{
			Here: []string{"h1"}, Ask: map[string][]string{}, Unheld: []string{"b1", "b2", "c1", "x"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, PlanCheck(members, self, tt.canAsk, tt.gone))
		})
	}
}

// Ensure each kind of answer leads to the documented verdict.
func TestJudge(t *testing.T) {
	check := Check{Here: []string{"h1", "h2"}, Ask: map[string][]string{b: {"b1", "b2"}, c: {"c1"}}, Unheld: []string{"x"}}
	tests := []struct {
		name     string
		here     Answer
		answers  map[string]Answer
		stopping bool
		want     Verdict
	}{
		{"everyone holds theirs (local and elsewhere): only the unrecorded one",
			Answer{Held: []string{"h1", "h2"}}, map[string]Answer{b: {Held: []string{"b1", "b2"}}, c: {Held: []string{"c1"}}}, false,
			Verdict{Locate: []string{"x"}}},
		{"this instance no longer holds one",
			Answer{Held: []string{"h2"}}, map[string]Answer{b: {Held: []string{"b1", "b2"}}, c: {Held: []string{"c1"}}}, false,
			Verdict{Locate: []string{"h1", "x"}}},
		{"holder no longer holds one",
			Answer{Held: []string{"h1", "h2"}}, map[string]Answer{b: {Held: []string{"b2"}}, c: {Held: []string{"c1"}}}, false,
			Verdict{Locate: []string{"b1", "x"}}},
		{"holder answers about ids it was not asked about: ignored",
			Answer{Held: []string{"h1", "h2"}}, map[string]Answer{b: {Held: []string{"b1", "b2", "c1"}}, c: {}}, false,
			Verdict{Locate: []string{"c1", "x"}}},
		{"holder unreachable: gone, its connections go elsewhere",
			Answer{Held: []string{"h1", "h2"}}, map[string]Answer{b: {Failed: true}, c: {Held: []string{"c1"}}}, false,
			Verdict{Locate: []string{"b1", "b2", "x"}, Gone: []string{b}}},
		{"holder without an answer counts as unreachable",
			Answer{Held: []string{"h1", "h2"}}, map[string]Answer{c: {Held: []string{"c1"}}}, false,
			Verdict{Locate: []string{"b1", "b2", "x"}, Gone: []string{b}}},
		{"instance stopping: nothing, nobody marked gone",
			Answer{}, map[string]Answer{b: {Failed: true}, c: {Failed: true}}, true,
			Verdict{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, Judge(check, tt.here, tt.answers, tt.stopping))
		})
	}
}

// Ensure what Locate answered is written back as documented.
func TestRecord(t *testing.T) {
	got := Record(map[string]Located{
		"moved":   {Result: Found, Addr: b},
		"here":    {Result: Found, Addr: self},
		"noaddr":  {Result: Found},
		"missing": {Result: Missing},
		"failed":  {Result: LocateFailed},
	})
	assert.Equal(t, Records{
		Holders: map[string]string{"moved": b, "here": self},
		Remove:  []string{"missing"},
		Retry:   []string{"failed"},
	}, got)
	assert.Equal(t, Records{Holders: map[string]string{}}, Record(nil))
}
