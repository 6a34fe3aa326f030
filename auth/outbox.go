package auth

import (
	"context"
	"strconv"
	"sync"
	"time"

	"gatehouse/storage"
)

// The outbox: notices reach the live stream through one writer per
// process, which puts everything queued into the next batch
// (storage.Publish), so a flood of notices makes batches bigger rather
// than the queue longer. A request queues its notice and tells this
// instance's subscribers at once; it waits for the write only when the
// notice may end sessions, and then for a batch or two, never for a turn
// behind other notices one by one. Notices that may end sessions go
// before the rest, and at once; the rest gather for batchGap after each
// batch, so that a flood of them costs the stream (and the instances
// tailing it) a few documents a second. The queues are bounded: past the
// bound the rest (SIGNED_IN, DATA_UPDATED) are dropped and logged, and
// lost session-ending notices are replaced by one resync notice, which
// makes every instance's subscribers read their sessions again; a session
// that ended is then told as REVOKED at worst.

// noticeResync is the notice that has every subscriber check its session.
const noticeResync = "RESYNC"

// Bounds of the outbox.
const (
	// maxQueued bounds each of the two queues (a notice is ~100 bytes).
	maxQueued = 4096
	// publishTries bounds the attempts to write one batch, publishTimeout
	// each attempt; a batch given up is replaced by a resync notice.
	publishTries   = 3
	publishTimeout = 5 * time.Second
	// dropLogGap is how often dropped notices are logged, at most.
	dropLogGap = 10 * time.Second
	// batchGap is how long the rest gather after a batch.
	batchGap = 50 * time.Millisecond
	// endingWait bounds how long a request waits for its notice that may
	// end sessions to be written: normally a batch or two, and at worst
	// while the writer tries (the batch being written, then its own),
	// within the HTTP server's 30 s write timeout.
	endingWait = 25 * time.Second
)

type outbox struct {
	mu      sync.Mutex
	ending  []queued         // notices that may end sessions: written first
	rest    []storage.Notice // SIGNED_IN and DATA_UPDATED
	missed  bool             // notices were lost: the next batch resyncs
	dropped int              // rest notices dropped, not yet logged
	logged  time.Time        // when drops were last logged
	writing bool             // a writer runs
	urgent  chan struct{}    // a notice that may end sessions came
}

// queued is a notice that may end sessions, and the channel closed once
// its batch is written (or given up).
type queued struct {
	notice storage.Notice
	done   chan struct{}
}

// mayEnd reports whether a notice of type typ may end sessions.
func mayEnd(typ string) bool { return typ != EventSignedIn && typ != NoticeDataUpdated }

// put queues n and reports whether a writer must be started for it. For a
// notice that may end sessions it also returns a channel closed once the
// notice is in the stream or given up (replaced by a resync notice).
func (o *outbox) put(n storage.Notice) (done <-chan struct{}, start bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	switch {
	case !mayEnd(n.Type) && len(o.rest) >= maxQueued:
		o.dropped++
	case !mayEnd(n.Type):
		o.rest = append(o.rest, n)
	case len(o.ending) >= maxQueued:
		for _, q := range o.ending {
			close(q.done)
		}
		o.ending, o.missed = nil, true
		d := make(chan struct{})
		close(d)
		done = d
	default:
		q := queued{n, make(chan struct{})}
		o.ending, done = append(o.ending, q), q.done
		select {
		case o.urgent <- struct{}{}:
		default:
		}
	}
	start, o.writing = !o.writing, true
	return done, start
}

// take returns the next batch, the channels to close once it is written,
// and the number of notices dropped if it is time to log them. An empty
// batch means the writer is done: the next put starts another.
func (o *outbox) take(now time.Time) (batch []storage.Notice, done []chan struct{}, dropped int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.missed {
		batch, o.missed = append(batch, storage.Notice{Type: noticeResync, At: now}), false
	}
	k := min(len(o.ending), storage.MaxBatch-len(batch))
	for _, q := range o.ending[:k] {
		batch, done = append(batch, q.notice), append(done, q.done)
	}
	o.ending = o.ending[k:]
	k = min(len(o.rest), storage.MaxBatch-len(batch))
	batch, o.rest = append(batch, o.rest[:k]...), o.rest[k:]
	if len(o.ending) == 0 {
		o.ending = nil // let the arrays go
	}
	if len(o.rest) == 0 {
		o.rest = nil
	}
	if o.dropped > 0 && now.Sub(o.logged) >= dropLogGap {
		dropped, o.dropped, o.logged = o.dropped, 0, now
	}
	o.writing = len(batch) > 0
	return batch, done, dropped
}

// lost records that a batch was not written: the next one resyncs.
func (o *outbox) lost() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.missed = true
}

// notify tells every instance's subscribers of userID what happened: this
// instance's at once, the others through the stream, soon after. A notice
// that may end sessions is in the stream when notify returns (unless the
// writer gave it up, or took longer than endingWait): what a request
// acknowledges reaches every instance even if this one dies right after
// answering.
func (s *Service) notify(typ, userID, sessionID string) {
	n := storage.Notice{UserID: userID, Type: typ, SessionID: sessionID, At: time.Now().UTC().Truncate(time.Millisecond)}
	s.live.dispatch(&n)
	done, start := s.outbox.put(n)
	if start {
		s.pending.Go(s.writeNotices)
	}
	if done != nil {
		t := time.NewTimer(endingWait)
		defer t.Stop()
		select {
		case <-done:
		case <-t.C:
		}
	}
}

// writeNotices writes the queued notices to the stream, batch after batch,
// until none is left.
func (s *Service) writeNotices() {
	ctx := context.Background()
	for {
		batch, done, dropped := s.outbox.take(time.Now())
		if dropped > 0 {
			s.log.WarnContext(ctx, "live events: the stream is behind; sign-in and data-update notices dropped", "count", dropped)
		}
		if len(batch) == 0 {
			return
		}
		s.publish(ctx, batch)
		for _, d := range done {
			close(d)
		}
		t := time.NewTimer(batchGap)
		select {
		case <-s.outbox.urgent:
		case <-t.C:
		}
		t.Stop()
	}
}

func (s *Service) publish(ctx context.Context, notices []storage.Notice) {
	b := &storage.Batch{Origin: s.origin, Key: s.origin + ":" + strconv.FormatInt(s.batches.Add(1), 10), Notices: notices}
	for try := 1; ; try++ {
		pctx, cancel := context.WithTimeout(ctx, publishTimeout)
		err := s.store.Publish(pctx, b)
		cancel()
		if err == nil {
			return
		}
		s.log.WarnContext(ctx, "live events: publish failed", "notices", len(notices), "try", try, "err", err)
		if try == publishTries {
			s.outbox.lost()
			return
		}
		time.Sleep(time.Second)
	}
}
