package auth

import (
	"fmt"
	"testing"
	"time"

	"gatehouse/storage"
)

func types(batch []storage.Notice) (out []string) {
	for _, n := range batch {
		out = append(out, n.Type)
	}
	return out
}

func newOutbox() *outbox { return &outbox{urgent: make(chan struct{}, 1)} }

func closed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// The outbox writes notices that may end sessions before the rest,
// at most storage.MaxBatch to a batch, tells the one writer when to start
// and when it is done, and gives the writer the channels that tell each
// waiting request its notice is written.
func TestOutboxPutsEndingsFirst(t *testing.T) {
	o := newOutbox()
	now := time.Now()
	if done, start := o.put(storage.Notice{Type: NoticeDataUpdated}); !start || done != nil {
		t.Fatalf("the first notice: start %v, done %v; want a writer started, and nothing to wait for", start, done)
	}
	for range storage.MaxBatch {
		if _, start := o.put(storage.Notice{Type: NoticeDataUpdated}); start {
			t.Fatal("a second writer was started while one runs")
		}
	}
	o.put(storage.Notice{Type: EventSignedIn})
	revoked, _ := o.put(storage.Notice{Type: EventSessionRevoked})
	select {
	case <-o.urgent:
	default:
		t.Fatal("a revocation did not hurry the writer")
	}

	batch, done, _ := o.take(now)
	if len(batch) != storage.MaxBatch || batch[0].Type != EventSessionRevoked {
		t.Fatalf("first batch: %d notices starting %v, want %d starting with the revocation", len(batch), types(batch[:2]), storage.MaxBatch)
	}
	if len(done) != 1 || closed(revoked) {
		t.Fatalf("%d channels to close, the revocation's closed: %v; want 1, open until written", len(done), closed(revoked))
	}
	close(done[0])
	if !closed(revoked) {
		t.Fatal("the revocation's request was not told")
	}
	batch, _, _ = o.take(now)
	if got := types(batch); len(got) != 3 || got[2] != EventSignedIn {
		t.Fatalf("second batch: %v, want the last two data updates and SIGNED_IN, in order", got)
	}
	if batch, _, _ = o.take(now); len(batch) != 0 {
		t.Fatalf("third batch: %v, want none", types(batch))
	}
	if _, start := o.put(storage.Notice{Type: EventSignedOut}); !start {
		t.Fatal("a notice after the writer finished started no writer")
	}
}

// Past its bounds the outbox drops sign-in and data-update notices (and
// says how many, at most once per dropLogGap), and replaces lost notices
// that may end sessions with one resync notice, which goes first; their
// requests wait no more.
func TestOutboxBounds(t *testing.T) {
	o := newOutbox()
	now := time.Now()
	for i := range maxQueued + 10 {
		o.put(storage.Notice{Type: NoticeDataUpdated, SessionID: fmt.Sprint(i)})
	}
	batch, _, dropped := o.take(now)
	if dropped != 10 || batch[0].SessionID != "0" {
		t.Fatalf("%d dropped, the first batch starting with %+v; want 10, and the oldest first", dropped, batch[0])
	}
	o.put(storage.Notice{Type: NoticeDataUpdated})
	if _, _, dropped := o.take(now.Add(time.Second)); dropped != 0 {
		t.Fatalf("%d drops logged again within a second", dropped)
	}

	o = newOutbox()
	first, _ := o.put(storage.Notice{Type: EventSessionRevoked})
	for range maxQueued - 1 {
		o.put(storage.Notice{Type: EventSessionRevoked})
	}
	over, _ := o.put(storage.Notice{Type: EventSessionRevoked})
	if !closed(first) || !closed(over) {
		t.Fatal("requests still wait for notices the outbox gave up")
	}
	o.put(storage.Notice{Type: EventPasswordChanged})
	batch, _, _ = o.take(now)
	if got := types(batch); len(got) != 2 || got[0] != noticeResync || got[1] != EventPasswordChanged {
		t.Fatalf("after an overflow: %v, want RESYNC then the notice that came after", got)
	}

	o.put(storage.Notice{Type: EventSignedOut})
	o.take(now)
	o.lost() // that batch was not written
	o.put(storage.Notice{Type: EventSignedIn})
	if batch, _, _ = o.take(now); len(batch) != 2 || batch[0].Type != noticeResync {
		t.Fatalf("after a lost batch: %v, want RESYNC first", types(batch))
	}
}
