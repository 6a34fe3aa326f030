package storage

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Sessions are filed by when they expire, in collections that each hold
// a span of time ("expiries_000001764364800" holds the sessions expiring
// in the span that ends at that Unix second): {_id: sessionId, userId}. A
// sweep reads the collections whose span has ended, deletes the sessions
// that expired, and drops each collection. So a sweep costs what it finds
// due, however many sessions live on, and the engine needs no index but
// _id.
//
// A span is a power of two seconds near a quarter of the session's idle
// timeout (at most 2^16 s, about 18 hours): a sweep comes at most that
// long after an expiry, and only a few collections exist at a time. A
// session whose expiry slides into a later span is filed there too (see
// TouchSession); its earlier entry is stale, and the sweep skips it after
// reading the session, which is still alive.

const expiriesPrefix = "expiries_"

type expiryDoc struct {
	SessionID string `bson:"_id"`
	UserID    string `bson:"userId"`
}

// expiryFile is the collection of a session last seen at seen that expires
// at expires.
func expiryFile(seen, expires time.Time) string {
	quarter := int64(expires.Sub(seen)/time.Second) / 4
	span := int64(1)
	for span*2 <= quarter && span < 1<<16 {
		span *= 2
	}
	end := (expires.Unix()/span + 1) * span // every expiry in the span is before its end
	return fmt.Sprintf("%s%015d", expiriesPrefix, end)
}

// fileEnd returns the end of the span that collection name holds, if it is
// a file of prefix.
func fileEnd(prefix, name string) (int64, bool) {
	n, err := strconv.ParseInt(strings.TrimPrefix(name, prefix), 10, 64)
	return n, err == nil && strings.HasPrefix(name, prefix)
}

// sweepDueFiles calls sweep with each file of prefix whose span ended by
// now, and drops the file once sweep has done it; it returns the sum of
// what sweep counted. Several instances may sweep at once: a file another
// dropped meanwhile is no error.
func (s *Store) sweepDueFiles(ctx context.Context, prefix string, now time.Time, sweep func(*mongo.Collection) (int64, error)) (int64, error) {
	names, err := s.db.ListCollectionNames(ctx, bson.D{})
	if err != nil {
		return 0, translate("list "+prefix, err)
	}
	var total int64
	for _, name := range names {
		if end, ok := fileEnd(prefix, name); !ok || end > now.Unix() {
			continue
		}
		coll := s.db.Collection(name)
		n, err := sweep(coll)
		total += n
		if err == nil {
			err = coll.Drop(ctx)
		}
		if err != nil && s.exists(ctx, name) {
			return total, translate("sweep "+name, err)
		}
	}
	return total, nil
}

// readFile returns every document of file coll.
func readFile[T any](ctx context.Context, coll *mongo.Collection) ([]T, error) {
	cur, err := coll.Find(ctx, bson.D{})
	if err != nil {
		return nil, translate("read "+coll.Name(), err)
	}
	var docs []T
	if err := cur.All(ctx, &docs); err != nil {
		return nil, translate("read "+coll.Name(), err)
	}
	return docs, nil
}

// fileExpiry files sess under its expiry.
func (s *Store) fileExpiry(ctx context.Context, sess *Session) error {
	_, err := s.db.Collection(expiryFile(sess.LastSeenAt, sess.ExpiresAt)).InsertOne(ctx, expiryDoc{sess.ID, sess.UserID})
	if err != nil && !mongo.IsDuplicateKeyError(err) {
		return translate("file expiry", err)
	}
	return nil
}

// fileExpiries files many sessions, a request per collection.
func (s *Store) fileExpiries(ctx context.Context, sessions []*Session) error {
	byFile := map[string][]any{}
	for _, sess := range sessions {
		f := expiryFile(sess.LastSeenAt, sess.ExpiresAt)
		byFile[f] = append(byFile[f], expiryDoc{sess.ID, sess.UserID})
	}
	for f, docs := range byFile {
		_, err := s.db.Collection(f).InsertMany(ctx, docs, options.InsertMany().SetOrdered(false))
		if err != nil && !mongo.IsDuplicateKeyError(err) {
			return translate("file expiries", err)
		}
	}
	return nil
}

// DeleteExpiredSessions deletes the sessions filed under spans that ended
// by now whose expiresAt has passed, calls ended (if not nil) with each,
// and returns how many it deleted. Several instances may run it at once:
// each session is deleted once, and ended called once, and the others
// count fewer.
func (s *Store) DeleteExpiredSessions(ctx context.Context, now time.Time, ended func(*Session)) (int64, error) {
	return s.sweepDueFiles(ctx, expiriesPrefix, now, func(coll *mongo.Collection) (int64, error) {
		return s.sweepFile(ctx, coll, now, ended)
	})
}

// exists reports whether collection name exists (true if it cannot tell).
func (s *Store) exists(ctx context.Context, name string) bool {
	names, err := s.db.ListCollectionNames(ctx, bson.D{{Key: "name", Value: name}})
	return err != nil || len(names) > 0
}

// sweepFile deletes the expired sessions filed in coll.
func (s *Store) sweepFile(ctx context.Context, coll *mongo.Collection, now time.Time, ended func(*Session)) (int64, error) {
	filed, err := readFile[expiryDoc](ctx, coll)
	if err != nil {
		return 0, err
	}
	var deleted atomic.Int64
	err = each(len(filed), func(i int) error {
		// From the database: a sweep's sessions are about to end, and
		// caching them would only push out the ones in use.
		sess, err := s.findSession(ctx, filed[i].SessionID)
		if errors.Is(err, ErrNotFound) || (err == nil && sess.ExpiresAt.After(now)) {
			return nil // gone already, or filed again under a later span
		} else if err != nil {
			return err
		}
		ok, err := s.DeleteSession(ctx, sess.ID, sess.UserID)
		if ok {
			deleted.Add(1)
			if ended != nil {
				ended(sess)
			}
		}
		return err
	})
	return deleted.Load(), err
}
