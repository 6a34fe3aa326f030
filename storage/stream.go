package storage

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// The live stream tells every instance what happened to a user's sessions,
// so that each can push it to its subscribers. Notices are numbered by a
// sequence that writers claim with unique inserts: notice n is the
// document whose _id is n in 19 decimal digits. A writer inserts its idea
// of the next number and, when another writer holds that one, tries again
// after the newest. So the numbers have no gaps, and notice n exists
// before any later one does: a reader polls for the next number by _id
// (the one look-up the embedded engine answers from an index) and misses
// nothing. A writer trusts its idea of the next number for hintAge only,
// and notices are trimmed only when older than twice that (and never the
// newest), so a number is never handed out twice. The stream's times are
// the writers' clocks, which must agree to within hintAge.

const noticesCollection = "eventStream"

// Notice is one entry of the live stream. At is when it was published.
type Notice struct {
	Seq       int64
	UserID    string
	Type      string
	SessionID string
	At        time.Time
}

type noticeDoc struct {
	ID        string    `bson:"_id"`
	UserID    string    `bson:"userId"`
	Type      string    `bson:"type"`
	SessionID string    `bson:"sessionId,omitempty"`
	At        time.Time `bson:"at"`
}

func noticeID(seq int64) string { return fmt.Sprintf("%019d", seq) }

// stream is this process's writer: one claim at a time, so that its own
// writers do not race each other for numbers. The turn is a one-slot
// channel rather than a mutex, so that a writer may bound its wait; those
// waiting get it in the order they came.
type stream struct {
	turn chan struct{}
	next int64     // 0: not read yet
	at   time.Time // when next was last known to be right
}

// ErrBusy is Publish's error when its turn did not come within its wait.
var ErrBusy = errors.New("storage: publish: too many notices waiting")

// hintAge is how long a writer trusts its next number: any notice at or
// after it is younger than that, so none of them has been trimmed.
const hintAge = time.Minute

// Publish appends n to the stream and sets n.Seq and n.At. With wait > 0
// it gives up with ErrBusy if its turn has not come within wait (a notice
// that may be lost under a flood); otherwise it waits as long as ctx.
func (s *Store) Publish(ctx context.Context, n *Notice, wait time.Duration) error {
	var giveUp <-chan time.Time
	if wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		giveUp = t.C
	}
	select {
	case s.stream.turn <- struct{}{}:
		defer func() { <-s.stream.turn }()
	case <-giveUp:
		return ErrBusy
	case <-ctx.Done():
		return translate("publish", ctx.Err())
	}
	for taken := 0; ; {
		now := time.Now()
		if s.stream.next == 0 || now.Sub(s.stream.at) > hintAge || taken == 8 {
			taken = 0
			last, err := s.LastNotice(ctx)
			if err != nil {
				return err
			}
			s.stream.next, s.stream.at = last+1, now
		}
		n.At = now.UTC().Truncate(time.Millisecond)
		d := noticeDoc{noticeID(s.stream.next), n.UserID, n.Type, n.SessionID, n.At}
		_, err := s.notices.InsertOne(ctx, d)
		if mongo.IsDuplicateKeyError(err) {
			// Another instance holds it: the next, then, and after a few
			// the newest. (Reading the newest at every collision would scan
			// the stream all the time: two busy instances collide often.)
			s.stream.next++
			taken++
			continue
		} else if err != nil {
			return translate("publish", err)
		}
		n.Seq = s.stream.next
		s.stream.next, s.stream.at = n.Seq+1, now
		return nil
	}
}

// NoticeAt returns notice seq, or ErrNotFound if it is not written yet (or
// was trimmed).
func (s *Store) NoticeAt(ctx context.Context, seq int64) (*Notice, error) {
	var d noticeDoc
	if err := s.notices.FindOne(ctx, byID(noticeID(seq))).Decode(&d); err != nil {
		return nil, translate("notice", err)
	}
	return &Notice{Seq: seq, UserID: d.UserID, Type: d.Type, SessionID: d.SessionID, At: d.At}, nil
}

// LastNotice returns the number of the newest notice, 0 if there is none.
// It reads the whole (short, trimmed) stream on the embedded engine.
func (s *Store) LastNotice(ctx context.Context) (int64, error) {
	var d noticeDoc
	err := s.notices.FindOne(ctx, bson.D{}, options.FindOne().SetSort(bson.D{{Key: "_id", Value: -1}})).Decode(&d)
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

// TrimNotices deletes the notices older than age (at least twice
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
