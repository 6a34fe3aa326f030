package storage

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// A user's security log is numbered: the user's eventHeads document counts
// the events written ({_id: userId, next, low}, one atomic $inc each), and
// event n is the document "<userId>:<n>" of securityEvents. Reading the log
// newest first is then look-ups by _id, from next down to low, whatever
// else the collection holds. A number whose write failed is a gap that
// readers skip.
//
// Each event is also filed, like sessions, under the span of time in which
// it leaves the log ("eventExpiries_<end>": {_id: event id, userId, n}); a
// sweep deletes the events of the spans that have ended, raises the users'
// low past them, and drops the files.

const (
	eventHeadsCollection = "eventHeads"
	eventsCollection     = "securityEvents"
	eventExpiriesPrefix  = "eventExpiries_"
	// eventSpan is the span of one file of event expiries, about 18 hours:
	// events leave the log at most that late.
	eventSpan = 1 << 16
)

// Event is one entry of a user's security log.
type Event struct {
	// ID is the document's _id, "<userId>:<n>"; N is n, the event's number
	// in its user's log (1, 2, ...).
	ID        string
	N         int64
	UserID    string
	Type      string
	At        time.Time
	SessionID string
	IP        string
	UserAgent string
	// Disposable marks a log kept only for a while (see AppendEvent's
	// caller): once its newest event is swept, its head document goes too.
	Disposable bool
}

type eventDoc struct {
	ID        string    `bson:"_id"`
	N         int64     `bson:"n"`
	UserID    string    `bson:"userId"`
	Type      string    `bson:"type"`
	At        time.Time `bson:"at"`
	SessionID string    `bson:"sessionId,omitempty"`
	IP        string    `bson:"ip,omitempty"`
	UserAgent string    `bson:"userAgent,omitempty"`
	// ExpiresAt is for MongoDB's TTL index, a net behind the sweeper.
	ExpiresAt time.Time `bson:"expiresAt"`
}

type eventHeadDoc struct {
	UserID string `bson:"_id"`
	// Next is the number of the last event written; Low the lowest that
	// may still be in the log.
	Next int64 `bson:"next"`
	Low  int64 `bson:"low"`
	// FailDay and Failures count the failure events of one day (see
	// CountFailureEvent).
	FailDay  string `bson:"failDay,omitempty"`
	Failures int    `bson:"failures,omitempty"`
}

type eventFileDoc struct {
	ID     string `bson:"_id"`
	UserID string `bson:"userId"`
	N      int64  `bson:"n"`
	// Disposable: the log's head goes with its last event (see Event).
	Disposable bool `bson:"disposable,omitempty"`
}

func eventID(userID string, n int64) string { return userID + ":" + strconv.FormatInt(n, 10) }

// AppendEvent writes e as the next event of e.UserID's log, to be kept
// until e.At plus retention, and sets e.ID and e.N.
func (s *Store) AppendEvent(ctx context.Context, e *Event, retention time.Duration) error {
	var head eventHeadDoc
	err := s.eventHeads.FindOneAndUpdate(ctx, byID(e.UserID),
		bson.D{{Key: "$inc", Value: bson.D{{Key: "next", Value: int64(1)}}}},
		options.FindOneAndUpdate().SetUpsert(true).SetReturnDocument(options.After),
	).Decode(&head)
	if err != nil {
		return translate("number event", err)
	}
	e.N, e.ID = head.Next, eventID(e.UserID, head.Next)
	d := eventDoc{e.ID, e.N, e.UserID, e.Type, e.At, e.SessionID, e.IP, e.UserAgent, e.At.Add(retention)}
	if _, err := s.events.InsertOne(ctx, d); err != nil {
		return translate("append event", err)
	}
	end := (e.At.Add(retention).Unix()/eventSpan + 1) * eventSpan
	file := s.db.Collection(fmt.Sprintf("%s%015d", eventExpiriesPrefix, end))
	if _, err := file.InsertOne(ctx, eventFileDoc{e.ID, e.UserID, e.N, e.Disposable}); err != nil && !mongo.IsDuplicateKeyError(err) {
		return translate("file event", err)
	}
	return nil
}

// EventsOfUser returns up to limit events of userID's log, newest first,
// starting below number before (0: from the newest), and whether older
// ones remain.
func (s *Store) EventsOfUser(ctx context.Context, userID string, before int64, limit int) ([]*Event, bool, error) {
	var head eventHeadDoc
	err := s.eventHeads.FindOne(ctx, byID(userID)).Decode(&head)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, false, nil
	} else if err != nil {
		return nil, false, translate("events", err)
	}
	n := head.Next
	if before > 0 {
		n = min(n, before-1)
	}
	var out []*Event
	// One event more than asked tells whether there are older ones. Gaps
	// are rare, so a batch of limit+1 numbers mostly finishes the page.
	for n >= max(head.Low, 1) && len(out) <= limit {
		batch := make([]*Event, min(int64(limit+1-len(out)), n-max(head.Low, 1)+1))
		err := each(len(batch), func(i int) error {
			var d eventDoc
			err := s.events.FindOne(ctx, byID(eventID(userID, n-int64(i)))).Decode(&d)
			if errors.Is(err, mongo.ErrNoDocuments) {
				return nil // a gap, or swept meanwhile
			} else if err != nil {
				return translate("event", err)
			}
			batch[i] = &Event{ID: d.ID, N: d.N, UserID: d.UserID, Type: d.Type, At: d.At, SessionID: d.SessionID, IP: d.IP, UserAgent: d.UserAgent}
			return nil
		})
		if err != nil {
			return nil, false, err
		}
		for _, e := range batch {
			if e != nil {
				out = append(out, e)
			}
		}
		n -= int64(len(batch))
	}
	if len(out) > limit {
		return out[:limit], true, nil
	}
	return out, false, nil
}

// LastEventNumber returns the number of userID's newest event (0: none).
func (s *Store) LastEventNumber(ctx context.Context, userID string) (int64, error) {
	var head eventHeadDoc
	err := s.eventHeads.FindOne(ctx, byID(userID)).Decode(&head)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return 0, nil
	} else if err != nil {
		return 0, translate("events", err)
	}
	return head.Next, nil
}

// CountFailureEvent counts one failure event of userID on day (any string
// naming it) and reports whether it is within limit for that day: so a
// guessing flood leaves at most limit failure events per user and day.
func (s *Store) CountFailureEvent(ctx context.Context, userID, day string, limit int) (bool, error) {
	inc := func() (bool, error) {
		res, err := s.eventHeads.UpdateOne(ctx,
			bson.D{{Key: "_id", Value: userID}, {Key: "failDay", Value: day}, {Key: "failures", Value: bson.D{{Key: "$lt", Value: limit}}}},
			bson.D{{Key: "$inc", Value: bson.D{{Key: "failures", Value: 1}}}})
		if err != nil {
			return false, translate("count failure", err)
		}
		return res.MatchedCount == 1, nil
	}
	if ok, err := inc(); ok || err != nil {
		return ok, err
	}
	// Another day's count, or none: start this day's. When the document
	// is on this day already, the upsert's insert of its _id fails: it is
	// over the limit, or another failure has just started the day.
	res, err := s.eventHeads.UpdateOne(ctx,
		bson.D{{Key: "_id", Value: userID}, {Key: "failDay", Value: bson.D{{Key: "$ne", Value: day}}}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "failDay", Value: day}, {Key: "failures", Value: 1}}}},
		options.UpdateOne().SetUpsert(true))
	if mongo.IsDuplicateKeyError(err) {
		return inc()
	} else if err != nil {
		return false, translate("count failure", err)
	}
	return res.MatchedCount+res.UpsertedCount == 1, nil
}

// DeleteExpiredEvents deletes the events filed under spans that ended by
// now and returns how many it deleted. Several instances may run it at
// once.
func (s *Store) DeleteExpiredEvents(ctx context.Context, now time.Time) (int64, error) {
	return s.sweepDueFiles(ctx, eventExpiriesPrefix, now, func(coll *mongo.Collection) (int64, error) {
		filed, err := readFile[eventFileDoc](ctx, coll)
		if err != nil {
			return 0, err
		}
		var deleted atomic.Int64
		err = each(len(filed), func(i int) error {
			f := filed[i]
			// Low first: a reader never walks below it, so it never looks
			// for an event that is about to go.
			_, err := s.eventHeads.UpdateOne(ctx, byID(f.UserID), bson.D{{Key: "$max", Value: bson.D{{Key: "low", Value: f.N + 1}}}})
			if err != nil {
				return translate("sweep events", err)
			}
			res, err := s.events.DeleteOne(ctx, byID(f.ID))
			if err != nil {
				return translate("sweep events", err)
			}
			deleted.Add(res.DeletedCount)
			if f.Disposable { // the head too, if this was its newest event
				_, err = s.eventHeads.DeleteOne(ctx, bson.D{{Key: "_id", Value: f.UserID}, {Key: "next", Value: f.N}})
				if err != nil {
					return translate("sweep events", err)
				}
			}
			return nil
		})
		return deleted.Load(), err
	})
}
