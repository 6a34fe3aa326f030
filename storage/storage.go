// Package storage keeps gatehouse's users and sessions in MongoDB (or a
// server that speaks its wire protocol, such as the embedded FerretDB).
//
// It is the only package that imports the MongoDB driver: driver errors are
// translated here into ErrNotFound and ErrDuplicate, and bson types never
// leave the package. It knows nothing of passwords, tokens or GraphQL.
//
// Every look-up is by primary key: users are keyed by their normalised
// name, sessions by their random public id, a user's list of sessions by
// the user's id, and expired sessions are filed by the hour (expiry.go).
// That is the only filter the embedded engine answers from an index, so
// nothing any request does costs more with other users' data.
//
// Every change is one atomic write of one document. MongoDB guarantees it;
// the embedded engine gets it from the relay in front of it (package
// wirelock), since its own updates are read-then-overwrite.
package storage

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/readpref"
	"go.mongodb.org/mongo-driver/v2/mongo/writeconcern"
)

var (
	// ErrNotFound means no document matched.
	ErrNotFound = errors.New("storage: not found")
	// ErrDuplicate means a unique key (a username) is already taken.
	ErrDuplicate = errors.New("storage: duplicate key")
)

// Collection names (and expiriesPrefix).
const (
	usersCollection        = "users"
	sessionsCollection     = "sessions"
	userSessionsCollection = "userSessions"
	metaCollection         = "meta"
)

// Server error codes that are not failures where they are checked.
const (
	// codeNamespaceExists: the collection to create exists already.
	codeNamespaceExists = 48
	// codeNotImplemented: FerretDB's answer to TTL and partial indexes.
	codeNotImplemented = 238
)

// Options tune Open.
type Options struct {
	// Timeout bounds every operation (the driver's client-side operation
	// timeout); 0 means 5 seconds.
	Timeout time.Duration
	// MaxPoolSize caps the connections to the server; 0 means the driver's
	// default (100).
	MaxPoolSize uint64
	// Dialer, if not nil, makes the connections instead of the network
	// (the embedded engine's in-process relay).
	Dialer options.ContextDialer
	// SessionCache is how many bytes of sessions the Store may keep in
	// memory once read (0: none), so that a session check costs no round
	// trip. Set it only when this Store is the only writer of the
	// database's sessions: it sees its own writes, not another's.
	SessionCache int64
}

// Store is a handle on gatehouse's database. It is safe for concurrent use.
type Store struct {
	client       *mongo.Client
	db           *mongo.Database
	users        *mongo.Collection
	sessions     *mongo.Collection
	userSessions *mongo.Collection
	throttle     *mongo.Collection
	names        *mongo.Collection
	meta         *mongo.Collection

	stepClaims, recoveryClaims *mongo.Collection // secondfactor.go

	passkeys, userPasskeys, passkeyCredentials, userHandles, challenges *mongo.Collection // passkeys.go

	eventHeads, events, notices *mongo.Collection // events.go, stream.go
	stream                      stream

	touched touches       // for TouchSessionOncePer
	cache   *sessionCache // nil: none
}

// Open connects to the MongoDB server at uri, checks that it answers and
// makes sure the indexes gatehouse relies on exist in database dbName.
func Open(ctx context.Context, uri, dbName string, opts Options) (*Store, error) {
	if opts.Timeout == 0 {
		opts.Timeout = 5 * time.Second
	}
	co := options.Client().ApplyURI(uri).
		SetTimeout(opts.Timeout).
		SetServerSelectionTimeout(opts.Timeout).
		SetConnectTimeout(opts.Timeout).
		// A revoked session must never be read back from a lagging secondary,
		// and a login must survive a primary failover once it has answered.
		SetReadPreference(readpref.Primary()).
		SetWriteConcern(writeconcern.Majority()).
		SetAppName("gatehouse")
	if opts.MaxPoolSize > 0 {
		co.SetMaxPoolSize(opts.MaxPoolSize)
	}
	if opts.Dialer != nil {
		co.SetDialer(opts.Dialer)
	}
	client, err := mongo.Connect(co)
	if err != nil {
		return nil, fmt.Errorf("storage: connect: %w", err)
	}
	s := &Store{client: client, db: client.Database(dbName), cache: newSessionCache(opts.SessionCache)}
	s.users = s.db.Collection(usersCollection)
	s.sessions = s.db.Collection(sessionsCollection)
	s.userSessions = s.db.Collection(userSessionsCollection)
	s.throttle = s.db.Collection(throttleCollection)
	s.names = s.db.Collection(namesCollection)
	s.meta = s.db.Collection(metaCollection)
	s.stepClaims = s.db.Collection(stepClaimsCollection)
	s.recoveryClaims = s.db.Collection(recoveryClaimsCollection)
	s.passkeys = s.db.Collection(passkeysCollection)
	s.userPasskeys = s.db.Collection(userPasskeysCollection)
	s.passkeyCredentials = s.db.Collection(passkeyCredentialsCollection)
	s.userHandles = s.db.Collection(userHandlesCollection)
	s.challenges = s.db.Collection(challengesCollection)
	s.eventHeads = s.db.Collection(eventHeadsCollection)
	s.events = s.db.Collection(eventsCollection)
	s.notices = s.db.Collection(noticesCollection)
	if err := s.Ping(ctx); err != nil {
		_ = client.Disconnect(context.Background())
		return nil, err
	}
	if err := s.ensureIndexes(ctx); err != nil {
		_ = client.Disconnect(context.Background())
		return nil, err
	}
	if err := s.migrate(ctx); err != nil {
		_ = client.Disconnect(context.Background())
		return nil, err
	}
	return s, nil
}

// ensureIndexes creates the collections and, where the server has them,
// the secondary indexes. gatehouse's queries need none: every look-up is by
// _id. On MongoDB, the sessions' userId index serves ad-hoc queries of
// operators, and a TTL index deletes expired sessions if no sweeper runs.
func (s *Store) ensureIndexes(ctx context.Context) error {
	// Creating the collections explicitly makes them exist from the start
	// (the embedded engine indexes _id per existing table).
	for _, c := range []string{usersCollection, sessionsCollection, userSessionsCollection, throttleCollection, namesCollection, metaCollection,
		stepClaimsCollection, recoveryClaimsCollection, passkeysCollection, userPasskeysCollection,
		passkeyCredentialsCollection, userHandlesCollection, challengesCollection,
		eventHeadsCollection, eventsCollection, noticesCollection} {
		if err := s.db.CreateCollection(ctx, c); err != nil && !hasCode(err, codeNamespaceExists) {
			return fmt.Errorf("storage: create %s: %w", c, err)
		}
	}
	_, err := s.sessions.Indexes().CreateOne(ctx, mongo.IndexModel{
		Keys:    bson.D{{Key: "userId", Value: 1}, {Key: "createdAt", Value: -1}},
		Options: options.Index().SetName("userId_createdAt"),
	})
	if err != nil {
		return fmt.Errorf("storage: index sessions.userId: %w", err)
	}
	// On MongoDB a TTL index is a second net behind the sweeper; FerretDB
	// has none and says so with NotImplemented.
	_, err = s.sessions.Indexes().CreateOne(ctx, mongo.IndexModel{
		Keys:    bson.D{{Key: "expiresAt", Value: 1}},
		Options: options.Index().SetName("expiresAt_ttl").SetExpireAfterSeconds(0),
	})
	if err != nil && !hasCode(err, codeNotImplemented) {
		return fmt.Errorf("storage: index sessions.expiresAt: %w", err)
	}
	for _, c := range []*mongo.Collection{s.stepClaims, s.challenges, s.events} {
		_, err = c.Indexes().CreateOne(ctx, mongo.IndexModel{
			Keys:    bson.D{{Key: "expiresAt", Value: 1}},
			Options: options.Index().SetName("expiresAt_ttl").SetExpireAfterSeconds(0),
		})
		if err != nil && !hasCode(err, codeNotImplemented) {
			return fmt.Errorf("storage: index %s.expiresAt: %w", c.Name(), err)
		}
	}
	// The stream is trimmed by time (TrimNotices); a TTL index would
	// delete its newest notice too.
	_, err = s.notices.Indexes().CreateOne(ctx, mongo.IndexModel{Keys: bson.D{{Key: "at", Value: 1}}, Options: options.Index().SetName("at")})
	if err != nil {
		return fmt.Errorf("storage: index %s.at: %w", s.notices.Name(), err)
	}
	_, err = s.events.Indexes().CreateOne(ctx, mongo.IndexModel{
		Keys:    bson.D{{Key: "userId", Value: 1}, {Key: "at", Value: -1}},
		Options: options.Index().SetName("userId_at"),
	})
	if err != nil {
		return fmt.Errorf("storage: index %s.userId: %w", s.events.Name(), err)
	}
	return nil
}

// Ping checks that the primary answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.client.Ping(ctx, readpref.Primary()); err != nil {
		return fmt.Errorf("storage: ping: %w", err)
	}
	return nil
}

// Close disconnects, waiting for in-flight operations up to ctx's deadline.
func (s *Store) Close(ctx context.Context) error {
	if err := s.client.Disconnect(ctx); err != nil {
		return fmt.Errorf("storage: close: %w", err)
	}
	return nil
}

// Drop deletes the whole database. Tests use it to clean up.
func (s *Store) Drop(ctx context.Context) error {
	defer s.cache.clear()
	if err := s.db.Drop(ctx); err != nil {
		return fmt.Errorf("storage: drop: %w", err)
	}
	return nil
}

// DatabaseName returns the name of the database the store uses.
func (s *Store) DatabaseName() string { return s.db.Name() }

func hasCode(err error, code int) bool {
	var se mongo.ServerError
	return errors.As(err, &se) && se.HasErrorCode(code)
}

// translate is the error of operation op: the driver's ErrNoDocuments
// becomes ErrNotFound, as it is (its message says "storage:" already), and
// any other error is wrapped with the operation's name.
func translate(op string, err error) error {
	if errors.Is(err, mongo.ErrNoDocuments) {
		return ErrNotFound
	}
	return fmt.Errorf("storage: %s: %w", op, err)
}
