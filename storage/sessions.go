package storage

import (
	"context"
	"fmt"
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

// CreateSession inserts sess. Its ID must be new (ErrDuplicate otherwise,
// which with 128 random bits means a broken random source). Empty Data is
// stored, and set in sess, as an empty object.
func (s *Store) CreateSession(ctx context.Context, sess *Session) error {
	return s.CreateSessions(ctx, []*Session{sess})
}

// CreateSessions inserts sessions in one request (the driver's insert
// command, whatever the count): for imports and benchmarks, where one
// request each would cost the embedded engine a transaction each.
func (s *Store) CreateSessions(ctx context.Context, sessions []*Session) error {
	docs := make([]any, len(sessions))
	for i, sess := range sessions {
		sess.Data = orEmpty(sess.Data)
		docs[i] = sessionDoc(*sess)
	}
	_, err := s.sessions.InsertMany(ctx, docs)
	if mongo.IsDuplicateKeyError(err) {
		return ErrDuplicate
	} else if err != nil {
		return fmt.Errorf("storage: create sessions: %w", err)
	}
	return nil
}

// SessionByID returns the session with id, or ErrNotFound. It does not look
// at expiry: that is the caller's policy.
func (s *Store) SessionByID(ctx context.Context, id string) (*Session, error) {
	var d sessionDoc
	err := s.sessions.FindOne(ctx, byID(id)).Decode(&d)
	if err != nil {
		return nil, translate("session by id", err)
	}
	return d.session(), nil
}

// TouchSession records a use of session id: lastSeenAt = seen and
// expiresAt = expires. It returns ErrNotFound if the session is gone (it is
// never recreated).
func (s *Store) TouchSession(ctx context.Context, id string, seen, expires time.Time) error {
	return s.updateSession(ctx, "touch session", id, bson.D{
		{Key: "lastSeenAt", Value: seen},
		{Key: "expiresAt", Value: expires},
	})
}

// RotateSecret replaces the secret hash of session id, so the token that
// carried the old secret stops working. ErrNotFound if the session is gone.
func (s *Store) RotateSecret(ctx context.Context, id string, secretHash []byte) error {
	return s.updateSession(ctx, "rotate secret", id, bson.D{{Key: "secretHash", Value: secretHash}})
}

func (s *Store) updateSession(ctx context.Context, what, id string, set bson.D) error {
	res, err := s.sessions.UpdateOne(ctx, byID(id), bson.D{{Key: "$set", Value: set}})
	if err != nil {
		return fmt.Errorf("storage: %s: %w", what, err)
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
	if err != nil {
		return nil, translate("set session data", err)
	}
	return d.session(), nil
}

// DeleteSession deletes session id and reports whether it existed.
func (s *Store) DeleteSession(ctx context.Context, id string) (bool, error) {
	res, err := s.sessions.DeleteOne(ctx, byID(id))
	if err != nil {
		return false, fmt.Errorf("storage: delete session: %w", err)
	}
	return res.DeletedCount == 1, nil
}

// SessionsOfUser returns up to limit sessions of user userID, newest first,
// expired ones included (the caller decides what expired means).
func (s *Store) SessionsOfUser(ctx context.Context, userID string, limit int) ([]*Session, error) {
	cur, err := s.sessions.Find(ctx, bson.D{{Key: "userId", Value: userID}},
		options.Find().SetSort(bson.D{{Key: "createdAt", Value: -1}, {Key: "_id", Value: 1}}).SetLimit(int64(limit)))
	if err != nil {
		return nil, fmt.Errorf("storage: sessions of user: %w", err)
	}
	var docs []sessionDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, fmt.Errorf("storage: sessions of user: %w", err)
	}
	out := make([]*Session, len(docs))
	for i := range docs {
		out[i] = docs[i].session()
	}
	return out, nil
}

// DeleteSessionsOfUser deletes every session of user userID except the one
// with id keep (none when keep is empty) and returns how many it deleted.
func (s *Store) DeleteSessionsOfUser(ctx context.Context, userID, keep string) (int64, error) {
	filter := bson.D{{Key: "userId", Value: userID}}
	if keep != "" {
		filter = append(filter, bson.E{Key: "_id", Value: bson.D{{Key: "$ne", Value: keep}}})
	}
	res, err := s.sessions.DeleteMany(ctx, filter)
	if err != nil {
		return 0, fmt.Errorf("storage: delete sessions of user: %w", err)
	}
	return res.DeletedCount, nil
}

// DeleteExpiredSessions deletes every session whose expiresAt is at or
// before now and returns how many. Several instances may run it at once:
// each document is deleted once and the others just count fewer.
func (s *Store) DeleteExpiredSessions(ctx context.Context, now time.Time) (int64, error) {
	res, err := s.sessions.DeleteMany(ctx, bson.D{{Key: "expiresAt", Value: bson.D{{Key: "$lte", Value: now}}}})
	if err != nil {
		return 0, fmt.Errorf("storage: delete expired sessions: %w", err)
	}
	return res.DeletedCount, nil
}

// CountSessions returns how many sessions are stored.
func (s *Store) CountSessions(ctx context.Context) (int64, error) {
	n, err := s.sessions.CountDocuments(ctx, bson.D{})
	if err != nil {
		return 0, fmt.Errorf("storage: count sessions: %w", err)
	}
	return n, nil
}

// byID is the filter the embedded engine answers from an index: exactly
// {_id: <string>}, nothing else in it.
func byID(id string) bson.D { return bson.D{{Key: "_id", Value: id}} }
