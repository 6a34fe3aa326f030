package storage

import (
	"context"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

const throttleCollection = "throttle"

// Throttle counts failed attempts for one key (a username or a client
// network). It lives in the database so that every instance shares it.
type Throttle struct {
	Key           string
	Failures      int
	LastFailureAt time.Time
	LockedUntil   time.Time
	Lockouts      int
}

type throttleDoc struct {
	Key           string    `bson:"_id"`
	Failures      int       `bson:"failures"`
	LastFailureAt time.Time `bson:"lastFailureAt"`
	LockedUntil   time.Time `bson:"lockedUntil"`
	Lockouts      int       `bson:"lockouts"`
}

// ThrottleByKey returns the throttle of key, or ErrNotFound if it has none.
func (s *Store) ThrottleByKey(ctx context.Context, key string) (*Throttle, error) {
	var d throttleDoc
	if err := s.throttle.FindOne(ctx, byID(key)).Decode(&d); err != nil {
		return nil, translate("throttle", err)
	}
	t := Throttle(d)
	return &t, nil
}

// AddFailure counts one failure for key at now, atomically, creating the
// throttle if needed, and returns it as updated.
func (s *Store) AddFailure(ctx context.Context, key string, now time.Time) (*Throttle, error) {
	return s.updateThrottle(ctx, key, bson.D{
		{Key: "$inc", Value: bson.D{{Key: "failures", Value: 1}}},
		{Key: "$set", Value: bson.D{{Key: "lastFailureAt", Value: now}}},
		{Key: "$setOnInsert", Value: bson.D{{Key: "lockedUntil", Value: time.Time{}}, {Key: "lockouts", Value: 0}}},
	})
}

// Lock refuses key until until and counts one more lockout.
func (s *Store) Lock(ctx context.Context, key string, until time.Time) (*Throttle, error) {
	return s.updateThrottle(ctx, key, bson.D{
		{Key: "$inc", Value: bson.D{{Key: "lockouts", Value: 1}}},
		{Key: "$set", Value: bson.D{{Key: "lockedUntil", Value: until}}},
	})
}

func (s *Store) updateThrottle(ctx context.Context, key string, update bson.D) (*Throttle, error) {
	var d throttleDoc
	err := s.throttle.FindOneAndUpdate(ctx, byID(key), update,
		options.FindOneAndUpdate().SetUpsert(true).SetReturnDocument(options.After)).Decode(&d)
	if err != nil {
		return nil, fmt.Errorf("storage: update throttle: %w", err)
	}
	t := Throttle(d)
	return &t, nil
}

// DeleteThrottle forgets key's failures.
func (s *Store) DeleteThrottle(ctx context.Context, key string) error {
	if _, err := s.throttle.DeleteOne(ctx, byID(key)); err != nil {
		return fmt.Errorf("storage: delete throttle: %w", err)
	}
	return nil
}

// DeleteStaleThrottles deletes throttles whose last failure is before
// quietSince and whose lock has ended by now, and returns how many.
func (s *Store) DeleteStaleThrottles(ctx context.Context, quietSince, now time.Time) (int64, error) {
	res, err := s.throttle.DeleteMany(ctx, bson.D{
		{Key: "lastFailureAt", Value: bson.D{{Key: "$lt", Value: quietSince}}},
		{Key: "lockedUntil", Value: bson.D{{Key: "$lte", Value: now}}},
	})
	if err != nil {
		return 0, fmt.Errorf("storage: delete stale throttles: %w", err)
	}
	return res.DeletedCount, nil
}
