package storage

import (
	"context"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

const throttleCollection = "throttle"

// Throttle counts the credential checks of one key (a username or a client
// network). It lives in the database so that every instance shares it,
// and each change is one atomic update of its document.
type Throttle struct {
	Key string
	// Pending counts the checks reserved and not yet decided.
	Pending int
	// Failures counts the failed checks since the last lock or reset.
	Failures int
	// At is when a check was last reserved or failed.
	At          time.Time
	LockedUntil time.Time
	Lockouts    int
}

type throttleDoc struct {
	Key         string    `bson:"_id"`
	Pending     int       `bson:"pending"`
	Failures    int       `bson:"failures"`
	At          time.Time `bson:"at"`
	LockedUntil time.Time `bson:"lockedUntil"`
	Lockouts    int       `bson:"lockouts"`
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

// ReserveAttempt counts one more pending check for key at now, creating
// the throttle if needed, and returns it as updated.
func (s *Store) ReserveAttempt(ctx context.Context, key string, now time.Time) (*Throttle, error) {
	return s.updateThrottle(ctx, key, true, bson.D{
		{Key: "$inc", Value: bson.D{{Key: "pending", Value: 1}}},
		{Key: "$set", Value: bson.D{{Key: "at", Value: now}}},
	})
}

// ReleaseAttempt ends a pending check of key that did not fail; forget
// also clears its failures and lockouts.
func (s *Store) ReleaseAttempt(ctx context.Context, key string, forget bool) error {
	update := bson.D{{Key: "$inc", Value: bson.D{{Key: "pending", Value: -1}}}}
	if forget {
		update = append(update, bson.E{Key: "$set", Value: bson.D{{Key: "failures", Value: 0}, {Key: "lockouts", Value: 0}}})
	}
	// No document back, and none created: reset meanwhile is fine.
	if _, err := s.throttle.UpdateOne(ctx, byID(key), update); err != nil {
		return translate("release throttle", err)
	}
	return nil
}

// FailAttempt turns a pending check of key into a failure at now and
// returns the throttle as updated.
func (s *Store) FailAttempt(ctx context.Context, key string, now time.Time) (*Throttle, error) {
	return s.updateThrottle(ctx, key, true, bson.D{
		{Key: "$inc", Value: bson.D{{Key: "pending", Value: -1}, {Key: "failures", Value: 1}}},
		{Key: "$set", Value: bson.D{{Key: "at", Value: now}}},
	})
}

// LockThrottle refuses key until until, sets its failures and counts one
// more lockout.
func (s *Store) LockThrottle(ctx context.Context, key string, until time.Time, failures int) error {
	_, err := s.updateThrottle(ctx, key, false, bson.D{
		{Key: "$inc", Value: bson.D{{Key: "lockouts", Value: 1}}},
		{Key: "$set", Value: bson.D{{Key: "lockedUntil", Value: until}, {Key: "failures", Value: failures}}},
	})
	return err
}

func (s *Store) updateThrottle(ctx context.Context, key string, upsert bool, update bson.D) (*Throttle, error) {
	var d throttleDoc
	err := s.throttle.FindOneAndUpdate(ctx, byID(key), update,
		options.FindOneAndUpdate().SetUpsert(upsert).SetReturnDocument(options.After)).Decode(&d)
	if err != nil {
		return nil, translate("update throttle", err)
	}
	t := Throttle(d)
	return &t, nil
}

// ResetThrottle deletes t if it has not changed since it was read (its At
// is the same), and reports whether it did.
func (s *Store) ResetThrottle(ctx context.Context, t *Throttle) (bool, error) {
	res, err := s.throttle.DeleteOne(ctx, bson.D{{Key: "_id", Value: t.Key}, {Key: "at", Value: t.At}})
	if err != nil {
		return false, translate("reset throttle", err)
	}
	return res.DeletedCount == 1, nil
}

// DeleteStaleThrottles deletes the throttles whose last check is before
// quietSince and whose lock has ended by now, and returns how many.
func (s *Store) DeleteStaleThrottles(ctx context.Context, quietSince, now time.Time) (int64, error) {
	cur, err := s.throttle.Find(ctx, bson.D{
		{Key: "at", Value: bson.D{{Key: "$lt", Value: quietSince}}},
		{Key: "lockedUntil", Value: bson.D{{Key: "$lte", Value: now}}},
	})
	if err != nil {
		return 0, translate("stale throttles", err)
	}
	var stale []throttleDoc
	if err := cur.All(ctx, &stale); err != nil {
		return 0, translate("stale throttles", err)
	}
	var n int64
	for _, d := range stale {
		// Each delete is conditional on the throttle being unchanged, so a
		// check reserved since the read is never forgotten.
		t := Throttle(d)
		ok, err := s.ResetThrottle(ctx, &t)
		if err != nil {
			return n, err
		}
		if ok {
			n++
		}
	}
	return n, nil
}
