package lexgen

import "testing"

// TestMinimise checks the minimised DFAs against the DFAs of the subset
// construction, walking every pair of states that one input reaches in
// both: they must accept the same rule, and where the minimal DFA is dead,
// nothing may be accepted any more (which lets ptb's scanner stop there).
func TestMinimise(t *testing.T) {
	_, d, starts := automata(grammar())
	m, mstarts := d.minimise(starts)
	t.Logf("%d states, %d minimal, %d classes", d.states(), m.states(), d.nclass)
	if m.states() >= d.states() {
		t.Errorf("minimising %d states left %d", d.states(), m.states())
	}
	// live[s]: something can still be accepted from state s of d.
	live := make([]bool, d.states())
	for changed := true; changed; {
		changed = false
		for s := range int32(d.states()) {
			if live[s] {
				continue
			}
			live[s] = d.accept[s] >= 0
			for _, x := range d.row(s) {
				live[s] = live[s] || live[x]
			}
			changed = changed || live[s]
		}
	}
	type pair struct{ s, ms int32 }
	seen := map[pair]bool{}
	var queue []pair
	for i := range starts {
		p := pair{starts[i], mstarts[i]}
		seen[p] = true
		queue = append(queue, p)
	}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		if p.ms == 0 {
			if live[p.s] {
				t.Fatalf("state %d is live, its minimal state dead", p.s)
			}
			continue
		}
		if d.accept[p.s] != m.accept[p.ms] {
			t.Fatalf("state %d accepts %d, its minimal state %d accepts %d", p.s, d.accept[p.s], p.ms, m.accept[p.ms])
		}
		for c := range d.nclass {
			q := pair{d.row(p.s)[c], m.row(p.ms)[c]}
			if !seen[q] {
				seen[q] = true
				queue = append(queue, q)
			}
		}
	}
}
