package storage

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// The live stream tells every instance what happened to a user's sessions,
// so that each can push it to its subscribers. Its entries are batches of
// notices, numbered by a sequence that writers claim with unique inserts:
// batch n is the document whose _id is n in 19 decimal digits. A writer
// inserts its idea of the next number and, when another writer holds that
// one, tries again after the newest it knows of. So the numbers have no
// gaps, and batch n exists before any later one does: a reader polls for
// the next number by _id (the one look-up the embedded engine answers
// from an index) and misses nothing. A writer trusts its idea of the next
// number for hintAge only, and batches are trimmed only when older than
// twice that (and never the newest), so a number is never handed out
// twice. The stream's times are the writers' clocks, which must agree to
// within hintAge.
//
// A writer puts every notice it has waiting into one batch (up to
// MaxBatch), so a round trip carries any number of them: a flood of
// notices makes batches bigger, not the wait for a number longer.

const noticesCollection = "eventStream"

// MaxBatch is the most notices one batch holds (each is about 150 bytes).
const MaxBatch = 256

// Notice is one entry of a batch. At is when it happened.
type Notice struct {
	UserID    string    `bson:"userId"`
	Type      string    `bson:"type"`
	SessionID string    `bson:"sessionId,omitempty"`
	At        time.Time `bson:"at"`
}

// Batch is one numbered entry of the stream.
type Batch struct {
	Seq int64
	// Origin names the writer, so that it may skip its own batches.
	Origin string
	// Key is unique to the batch: a write retried after an uncertain
	// failure (a timeout, whose insert may still land) recognises it.
	Key     string
	Notices []Notice
	// uncertain: an earlier Publish of the batch failed, perhaps after
	// its insert (at number tried) was applied.
	uncertain bool
	tried     int64
}

type batchDoc struct {
	ID      string    `bson:"_id"`
	Origin  string    `bson:"origin"`
	Key     string    `bson:"key"`
	At      time.Time `bson:"at"` // when it was written: trimming goes by it
	Notices []Notice  `bson:"notices"`
}

func noticeID(seq int64) string { return fmt.Sprintf("%019d", seq) }

// stream is this process's writer state (one claim at a time, so that its
// own writers do not race each other for numbers) and what its reader
// knows of the stream's end.
type stream struct {
	mu   sync.Mutex
	next int64     // 0: not read yet
	at   time.Time // when next was last known to be right
	// seen is the newest number this process's reader found, and seenAt
	// (unix nanoseconds) when it last found the number after it not
	// written yet: every batch after seen is younger than that. A writer
	// starts after seen rather than read the newest number (a scan of the
	// stream on the embedded engine), and after a lost number too: that
	// is where the other instances' batches end, most of the time.
	seen, seenAt atomic.Int64
}

// hintAge is how long a writer trusts its next number: any batch at or
// after it is younger than that, so none of them has been trimmed.
// maxWalk is how many taken numbers a writer walks past before it reads
// the newest (its reader's hint makes a longer walk rare).
const (
	hintAge = time.Minute
	maxWalk = 32
)

// Publish appends b (at most MaxBatch notices) to the stream and sets
// b.Seq. After a failure it may be called again with the same b: a batch
// whose earlier insert was applied after all is not written twice.
func (s *Store) Publish(ctx context.Context, b *Batch) error {
	if len(b.Notices) == 0 || len(b.Notices) > MaxBatch {
		return fmt.Errorf("storage: publish: %d notices in a batch", len(b.Notices))
	}
	st := &s.stream
	st.mu.Lock()
	defer st.mu.Unlock()
	for taken := 0; ; {
		now := time.Now()
		seenAt := time.Unix(0, st.seenAt.Load()) // first: seen may only have grown since
		seen := st.seen.Load()
		switch {
		case b.uncertain && b.tried != 0 && taken == 0:
			// Where the uncertain insert went, first: if it landed, it is
			// there. (A retry comes well within hintAge of that insert's
			// hint, so the number is still one to trust.)
			st.next = b.tried
		case st.next != 0 && now.Sub(st.at) <= hintAge && taken < maxWalk:
		case taken < maxWalk && now.Sub(seenAt) <= hintAge:
			st.next, st.at = max(st.next, seen+1), seenAt
		default:
			taken = 0
			last, err := s.LastNotice(ctx)
			if err != nil {
				return err
			}
			st.next, st.at = last+1, now
		}
		d := batchDoc{noticeID(st.next), b.Origin, b.Key, now.UTC().Truncate(time.Millisecond), b.Notices}
		_, err := s.notices.InsertOne(ctx, d)
		if mongo.IsDuplicateKeyError(err) && b.uncertain && st.next == b.tried {
			var there batchDoc
			if err := s.notices.FindOne(ctx, byID(d.ID)).Decode(&there); err != nil {
				// Whose it is stays unknown: walking on could write the
				// batch twice. The next try asks again.
				return translate("publish", err)
			}
			if there.Key == b.Key {
				err = nil // the earlier insert landed
			}
			b.uncertain = false // if another's, the earlier insert can land no more
		}
		if mongo.IsDuplicateKeyError(err) {
			// Another instance holds it: the next, or after the newest
			// this process has read, and after maxWalk tries the newest
			// there is. (Reading the newest at every collision would scan
			// the stream all the time: two busy instances collide often.)
			st.next++
			if now.Sub(seenAt) <= hintAge {
				st.next = max(st.next, seen+1)
			}
			taken++
			continue
		} else if err != nil {
			b.uncertain, b.tried = true, st.next // it may be applied later
			return translate("publish", err)
		}
		b.Seq, b.uncertain = st.next, false
		st.next, st.at = b.Seq+1, now
		return nil
	}
}

// BatchAt returns batch seq, or ErrNotFound if it is not written yet (or
// was trimmed). This process's writer learns from it where the stream
// ends: a process reads the stream in order, with one reader.
func (s *Store) BatchAt(ctx context.Context, seq int64) (*Batch, error) {
	var d batchDoc
	err := s.notices.FindOne(ctx, byID(noticeID(seq))).Decode(&d)
	switch {
	case err == nil && seq > s.stream.seen.Load():
		s.stream.seen.Store(seq)
	case errors.Is(err, mongo.ErrNoDocuments) && seq == s.stream.seen.Load()+1:
		s.stream.seenAt.Store(time.Now().UnixNano())
	}
	if err != nil {
		return nil, translate("notice", err)
	}
	return &Batch{Seq: seq, Origin: d.Origin, Key: d.Key, Notices: d.Notices}, nil
}

// LastNotice returns the number of the newest batch, 0 if there is none.
// It reads the whole (short, trimmed) stream on the embedded engine.
func (s *Store) LastNotice(ctx context.Context) (int64, error) {
	var d struct {
		ID string `bson:"_id"`
	}
	err := s.notices.FindOne(ctx, bson.D{}, options.FindOne().SetProjection(bson.D{{Key: "_id", Value: 1}}).SetSort(bson.D{{Key: "_id", Value: -1}})).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return 0, nil
	} else if err != nil {
		return 0, translate("last notice", err)
	}
	seq, err := strconv.ParseInt(d.ID, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("storage: notice id %q: %w", d.ID, err)
	}
	return seq, nil
}

// TrimNotices deletes the batches older than age (at least twice
// hintAge), except the newest, and returns how many it deleted.
func (s *Store) TrimNotices(ctx context.Context, age time.Duration) (int64, error) {
	last, err := s.LastNotice(ctx)
	if err != nil || last == 0 {
		return 0, err
	}
	res, err := s.notices.DeleteMany(ctx, bson.D{
		{Key: "_id", Value: bson.D{{Key: "$lt", Value: noticeID(last)}}},
		{Key: "at", Value: bson.D{{Key: "$lt", Value: time.Now().Add(-max(age, 2*hintAge))}}},
	})
	if err != nil {
		return 0, translate("trim notices", err)
	}
	return res.DeletedCount, nil
}

// WatchNotices returns a channel that receives soon after each notice is
// written, from a MongoDB change stream, so that a reader need not poll;
// ok is false where the server has none (the embedded engine, a MongoDB
// that is not a replica set). The channel closes if the stream fails.
// The notices themselves are still read by number: the change stream only
// says when.
func (s *Store) WatchNotices(ctx context.Context) (wake <-chan struct{}, ok bool) {
	cs, err := s.notices.Watch(ctx, mongo.Pipeline{{{Key: "$match", Value: bson.D{{Key: "operationType", Value: "insert"}}}}})
	if err != nil {
		return nil, false
	}
	c := make(chan struct{}, 1)
	go func() {
		defer close(c)
		defer cs.Close(context.WithoutCancel(ctx))
		for cs.Next(ctx) {
			select {
			case c <- struct{}{}:
			default:
			}
		}
	}()
	return c, true
}
