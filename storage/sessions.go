package storage

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Session is a server-side login session.
type Session struct {
	// ID is the random public identifier and the document's _id.
	ID string
	// SecretHash is SHA-256 of the token's secret; the secret itself is
	// never stored.
	SecretHash []byte

	// The owner. Name and creation time are copied from the user (they
	// never change) so that answering "who is this?" takes one look-up.
	UserID        string
	UserKey       string
	UserName      string
	UserCreatedAt time.Time

	// Data is the client's free-form JSON object, as compact JSON text.
	// It is stored as text, not as a BSON document: the embedded engine
	// cannot store arrays nested in arrays, and text keeps numbers exact.
	// A session given none has an empty object: Data is never empty as
	// the store returns it.
	Data string

	CreatedAt  time.Time
	LastSeenAt time.Time
	ExpiresAt  time.Time

	UserAgent string
	IP        string

	// Factors are the factors the session has proven, in order, as the
	// auth package names them; empty for sessions from before they were
	// recorded. Pending marks a session that waits for its second factor.
	Factors []string
	Pending bool
	// AuthAt is when the session last proved a factor (zero for sessions
	// from before it was recorded: their creation stands in).
	AuthAt time.Time
	// PasskeyID names the passkey that opened the session, if one did:
	// deleting the passkey ends it.
	PasskeyID string
}

type sessionDoc struct {
	ID            string    `bson:"_id"`
	SecretHash    []byte    `bson:"secretHash"`
	UserID        string    `bson:"userId"`
	UserKey       string    `bson:"userKey"`
	UserName      string    `bson:"userName"`
	UserCreatedAt time.Time `bson:"userCreatedAt"`
	Data          string    `bson:"data"`
	CreatedAt     time.Time `bson:"createdAt"`
	LastSeenAt    time.Time `bson:"lastSeenAt"`
	ExpiresAt     time.Time `bson:"expiresAt"`
	UserAgent     string    `bson:"userAgent,omitempty"`
	IP            string    `bson:"ip,omitempty"`
	Factors       []string  `bson:"factors,omitempty"`
	Pending       bool      `bson:"pending,omitempty"`
	AuthAt        time.Time `bson:"authAt,omitempty"`
	PasskeyID     string    `bson:"passkeyId,omitempty"`
}

func (d *sessionDoc) session() *Session {
	s := Session(*d)
	s.Data = orEmpty(s.Data)
	return &s
}

// orEmpty is data, or an empty JSON object for none: the one place that
// says what a session without data holds.
func orEmpty(data string) string {
	if data == "" {
		return "{}"
	}
	return data
}

// A user's sessions are listed in a document of their own, keyed by the
// user's id (collection userSessions, {_id: userId, ids: [oldest, ...]}),
// so that listing, capping and ending them are _id look-ups, whatever
// other users hold. A session is inserted first and listed after, and
// delisted only after it is deleted, so an id in the list always names a
// session that exists or existed: a deletion can never delist a session
// that is about to be inserted and leave it alive but unlisted. A session
// not listed yet belongs to a login still in progress (which lists it
// before it answers, and takes it back if that fails).

type userSessionsDoc struct {
	UserID string   `bson:"_id"`
	IDs    []string `bson:"ids"`
}

// CreateSession stores sess and returns the ids of its user's sessions,
// oldest first, sess's included. Its ID must be new (ErrDuplicate
// otherwise, which with 128 random bits means a broken random source).
// Empty Data is stored, and set in sess, as an empty object.
func (s *Store) CreateSession(ctx context.Context, sess *Session) ([]string, error) {
	sess.Data = orEmpty(sess.Data)
	_, err := s.sessions.InsertOne(ctx, sessionDoc(*sess))
	if mongo.IsDuplicateKeyError(err) {
		return nil, ErrDuplicate
	} else if err != nil {
		return nil, translate("create session", err)
	}
	var list userSessionsDoc
	filed := make(chan error, 1) // the two writes at once: a login waits for one
	go func() { filed <- s.fileExpiry(ctx, sess) }()
	err = s.userSessions.FindOneAndUpdate(ctx, byID(sess.UserID),
		bson.D{{Key: "$push", Value: bson.D{{Key: "ids", Value: sess.ID}}}},
		options.FindOneAndUpdate().SetUpsert(true).SetReturnDocument(options.After),
	).Decode(&list)
	if ferr := <-filed; err == nil {
		err = ferr
	}
	if err != nil {
		// Unlisted, it would escape logouts everywhere: take it back.
		_, derr := s.DeleteSession(context.WithoutCancel(ctx), sess.ID, sess.UserID)
		return nil, errors.Join(translate("list session", err), derr)
	}
	return list.IDs, nil
}

// CreateSessions stores many sessions in a few requests: for imports and
// benchmarks, where one request each would cost the embedded engine a
// transaction each.
func (s *Store) CreateSessions(ctx context.Context, sessions []*Session) error {
	docs := make([]any, len(sessions))
	byUser := map[string][]string{}
	var users []string
	for i, sess := range sessions {
		sess.Data = orEmpty(sess.Data)
		docs[i] = sessionDoc(*sess)
		if byUser[sess.UserID] == nil {
			users = append(users, sess.UserID)
		}
		byUser[sess.UserID] = append(byUser[sess.UserID], sess.ID)
	}
	_, err := s.sessions.InsertMany(ctx, docs)
	if mongo.IsDuplicateKeyError(err) {
		return ErrDuplicate
	} else if err != nil {
		return translate("create sessions", err)
	}
	for _, u := range users {
		_, err := s.userSessions.UpdateOne(ctx, byID(u),
			bson.D{{Key: "$push", Value: bson.D{{Key: "ids", Value: bson.D{{Key: "$each", Value: byUser[u]}}}}}},
			options.UpdateOne().SetUpsert(true))
		if err != nil {
			return translate("list sessions", err)
		}
	}
	return s.fileExpiries(ctx, sessions)
}

// SessionByID returns the session with id, or ErrNotFound. It does not look
// at expiry: that is the caller's policy.
func (s *Store) SessionByID(ctx context.Context, id string) (*Session, error) {
	sess, ticket, ok := s.cache.get(id)
	if ok {
		return sess, nil
	}
	sess, err := s.findSession(ctx, id)
	if err != nil {
		return nil, err
	}
	s.cache.fill(sess, ticket)
	return sess, nil
}

// findSession reads session id from the database, not the cache.
func (s *Store) findSession(ctx context.Context, id string) (*Session, error) {
	var d sessionDoc
	err := s.sessions.FindOne(ctx, byID(id)).Decode(&d)
	if err != nil {
		return nil, translate("session by id", err)
	}
	return d.session(), nil
}

// TouchSession records a use of sess (as last read): lastSeenAt = seen and
// expiresAt = expires. It returns ErrNotFound if the session is gone (it
// is never recreated).
func (s *Store) TouchSession(ctx context.Context, sess *Session, seen, expires time.Time) error {
	ctx = writeContext(ctx) // the refiling too: a session must not go unfiled
	err := s.updateSession(ctx, "touch session", sess.ID, bson.D{
		{Key: "lastSeenAt", Value: seen},
		{Key: "expiresAt", Value: expires},
	})
	if err != nil || expiryFile(seen, expires) == expiryFile(sess.LastSeenAt, sess.ExpiresAt) {
		return err
	}
	touched := *sess
	touched.LastSeenAt, touched.ExpiresAt = seen, expires
	return s.fileExpiry(ctx, &touched)
}

// RotateSecret replaces the secret hash of session id, so the token that
// carried the old secret stops working, after the session proved a factor
// at authAt. ErrNotFound if the session is gone.
func (s *Store) RotateSecret(ctx context.Context, id string, secretHash []byte, authAt time.Time) error {
	return s.updateSession(ctx, "rotate secret", id, bson.D{{Key: "secretHash", Value: secretHash}, {Key: "authAt", Value: authAt}})
}

func (s *Store) updateSession(ctx context.Context, what, id string, set bson.D) error {
	ctx = writeContext(ctx)
	res, err := s.sessions.UpdateOne(ctx, byID(id), bson.D{{Key: "$set", Value: set}})
	s.cache.wrote(id, err != nil)
	if err != nil {
		return translate(what, err)
	}
	if res.MatchedCount == 0 {
		return ErrNotFound
	}
	return nil
}

// SetSessionData replaces the data of session id in one atomic write and
// returns the session as stored, or ErrNotFound.
func (s *Store) SetSessionData(ctx context.Context, id, data string) (*Session, error) {
	data = orEmpty(data)
	var d sessionDoc
	err := s.sessions.FindOneAndUpdate(ctx, byID(id),
		bson.D{{Key: "$set", Value: bson.D{{Key: "data", Value: data}}}},
		options.FindOneAndUpdate().SetReturnDocument(options.After),
	).Decode(&d)
	s.cache.wrote(id, err != nil && !errors.Is(err, mongo.ErrNoDocuments))
	if err != nil {
		return nil, translate("set session data", err)
	}
	return d.session(), nil
}

// DeleteSession deletes session id of user userID and reports whether it
// existed.
func (s *Store) DeleteSession(ctx context.Context, id, userID string) (bool, error) {
	return s.deleteSession(ctx, id, userID, byID(id))
}

// DeletePendingSession deletes session id of user userID if it is still
// pending (not completed meanwhile), and reports whether it did.
func (s *Store) DeletePendingSession(ctx context.Context, id, userID string) (bool, error) {
	return s.deleteSession(ctx, id, userID, bson.D{{Key: "_id", Value: id}, {Key: "pending", Value: true}})
}

func (s *Store) deleteSession(ctx context.Context, id, userID string, filter bson.D) (bool, error) {
	ctx = writeContext(ctx)
	res, err := s.sessions.DeleteOne(ctx, filter)
	s.cache.wrote(id, err != nil)
	if err != nil {
		return false, translate("delete session", err)
	}
	if res.DeletedCount == 0 && len(filter) > 1 {
		return false, nil // not deleted: it stays listed
	}
	_, err = s.userSessions.UpdateOne(ctx, byID(userID),
		bson.D{{Key: "$pull", Value: bson.D{{Key: "ids", Value: id}}}})
	if err != nil {
		return false, translate("unlist session", err)
	}
	return res.DeletedCount == 1, nil
}

// SessionIDsOfUser returns the ids of user userID's sessions, oldest first.
// It may include ids whose session is gone (deleted by a process that
// stopped before it delisted them).
func (s *Store) SessionIDsOfUser(ctx context.Context, userID string) ([]string, error) {
	var list userSessionsDoc
	err := s.userSessions.FindOne(ctx, byID(userID)).Decode(&list)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, nil
	} else if err != nil {
		return nil, translate("sessions of user", err)
	}
	return list.IDs, nil
}

// SessionsOfUser returns the newest limit sessions of user userID, newest
// first, expired ones included (the caller decides what expired means).
func (s *Store) SessionsOfUser(ctx context.Context, userID string, limit int) ([]*Session, error) {
	ids, err := s.SessionIDsOfUser(ctx, userID)
	if err != nil {
		return nil, err
	}
	ids = ids[max(0, len(ids)-limit):]
	found := make([]*Session, len(ids))
	err = each(len(ids), func(i int) error {
		sess, err := s.SessionByID(ctx, ids[i])
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		found[i] = sess
		return err
	})
	if err != nil {
		return nil, err
	}
	out := make([]*Session, 0, len(found))
	for _, sess := range found {
		if sess != nil {
			out = append(out, sess)
		}
	}
	slices.SortFunc(out, func(a, b *Session) int {
		if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out, nil
}

// DeleteSessionsOfUser deletes every session of user userID except the one
// with id keep (none when keep is empty) and returns how many it deleted.
func (s *Store) DeleteSessionsOfUser(ctx context.Context, userID, keep string) (int64, error) {
	ids, err := s.SessionIDsOfUser(ctx, userID)
	if err != nil {
		return 0, err
	}
	ids = slices.DeleteFunc(ids, func(id string) bool { return id == keep })
	return s.DeleteSessions(ctx, userID, ids)
}

// DeleteSessions deletes the sessions ids of user userID and returns how
// many existed.
func (s *Store) DeleteSessions(ctx context.Context, userID string, ids []string) (int64, error) {
	var deleted atomic.Int64
	err := each(len(ids), func(i int) error {
		ok, err := s.DeleteSession(ctx, ids[i], userID)
		if ok {
			deleted.Add(1)
		}
		return err
	})
	return deleted.Load(), err
}

// CountSessions returns how many sessions are stored.
func (s *Store) CountSessions(ctx context.Context) (int64, error) {
	n, err := s.sessions.CountDocuments(ctx, bson.D{})
	if err != nil {
		return 0, translate("count sessions", err)
	}
	return n, nil
}

// parallel bounds how many requests one call sends at once.
const parallel = 8

// each calls f(i) for i in [0, n), parallel at a time, and returns the
// errors joined.
func each(n int, f func(i int) error) error {
	if n == 1 {
		return f(0)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	sem := make(chan struct{}, parallel)
	for i := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := f(i); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// writeContext is ctx for a write that ends a session or moves its expiry
// or secret: without its cancellation, so that a client that goes away
// mid-request leaves none in doubt, half-done (a session deleted and
// still listed), or landing after its caller gave up on it, which would
// keep the session out of the cache for a minute (cache.go). The driver's
// operation timeout still bounds it. Data updates keep their request's
// cancellation: a client could otherwise pile up writes it no longer
// waits for (hanging up after each one), which held every connection to
// the engine in a red team's test.
func writeContext(ctx context.Context) context.Context { return context.WithoutCancel(ctx) }

// byID is the filter the embedded engine answers from an index: exactly
// {_id: <string>}, nothing else in it.
func byID(id string) bson.D { return bson.D{{Key: "_id", Value: id}} }
