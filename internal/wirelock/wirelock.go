// Package wirelock makes the single-document writes of an embedded FerretDB
// atomic, as MongoDB's are.
//
// FerretDB v1 runs every update as a read, then an unconditional overwrite
// of the whole document: two concurrent updates of one document lose one of
// them, a compare-and-swap filter lets several writers win, and a $set of
// one field can undo a concurrent $set of another. A [Relay] sits between
// the engine and every client and holds a lock per document from each write
// command until its reply, so writes to one document run one at a time.
// That is enough because the relay is the only way to the engine: it runs
// in the one process that owns the data files, and the engine itself
// listens only where no one else can reach it.
//
// Reads pass freely. A write the relay cannot pin to one document (a
// filter that is not an _id equality, a batch of several documents, a
// command it does not know) takes an exclusive lock instead, which waits
// for every write in flight and holds the others back: always correct,
// merely slower, and rare in gatehouse.
package wirelock

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/wiremessage"
)

// ErrClosed is returned by DialContext after Close.
var ErrClosed = errors.New("wirelock: relay closed")

// Relay forwards MongoDB wire-protocol connections to one upstream server,
// serialising the writes to each document. It is safe for concurrent use.
type Relay struct {
	upstream func(ctx context.Context) (net.Conn, error)
	locks    locks

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

// New returns a relay whose connections go to the server that upstream
// dials, once per client connection.
func New(upstream func(ctx context.Context) (net.Conn, error)) *Relay {
	return &Relay{upstream: upstream, conns: map[net.Conn]struct{}{}, locks: locks{keys: map[string]*keyLock{}}}
}

// DialContext returns a new in-process client connection to the relay. Its
// signature is the one the Mongo driver's SetDialer expects; network and
// address are ignored.
func (r *Relay) DialContext(ctx context.Context, _, _ string) (net.Conn, error) {
	client, server := net.Pipe()
	if err := r.start(ctx, server); err != nil {
		_ = client.Close()
		return nil, err
	}
	return client, nil
}

// Serve relays every connection ln accepts, until ln is closed or the
// relay is.
func (r *Relay) Serve(ln net.Listener) error {
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return fmt.Errorf("wirelock: accept: %w", err)
		}
		go func() {
			if err := r.start(context.Background(), c); err != nil {
				_ = c.Close()
			}
		}()
	}
}

// Close closes every connection and makes DialContext fail. It returns
// once every connection's goroutines have ended.
func (r *Relay) Close() error {
	r.mu.Lock()
	r.closed = true
	for c := range r.conns {
		_ = c.Close()
	}
	r.mu.Unlock()
	r.wg.Wait()
	return nil
}

// Exclusive runs fn while no write is in flight: it waits for the writes
// that have been sent to finish, holds new ones back until fn returns, and
// lets reads pass meanwhile. The engine's own maintenance uses it (a WAL
// checkpoint needs a moment with no write between its read and its commit).
func (r *Relay) Exclusive(fn func()) {
	r.locks.all.Lock()
	defer r.locks.all.Unlock()
	fn()
}

// start dials the upstream for client and relays between the two.
func (r *Relay) start(ctx context.Context, client net.Conn) error {
	up, err := r.upstream(ctx)
	if err != nil {
		return fmt.Errorf("wirelock: dial upstream: %w", err)
	}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		_ = up.Close()
		return ErrClosed
	}
	r.conns[client], r.conns[up] = struct{}{}, struct{}{}
	r.wg.Add(1)
	r.mu.Unlock()
	go func() {
		defer r.wg.Done()
		r.relay(client, up)
		r.mu.Lock()
		delete(r.conns, client)
		delete(r.conns, up)
		r.mu.Unlock()
	}()
	return nil
}

// abandonedWait bounds how long a connection whose client has gone keeps
// the locks of the writes it sent, waiting for their replies: far longer
// than a write takes, waits for SQLite's lock included (its busy timeout is
// 10 s in package embedded).
const abandonedWait = 30 * time.Second

// relay forwards requests from client to up and replies back, locking
// each write from its request until its reply. The wire protocol has one
// request in flight per connection, but nothing here relies on it.
//
// A client may go away with writes in flight (a driver that timed out, a
// request cancelled). The engine runs them all the same, reading the
// document and writing it back whole, so their locks are kept until their
// replies come, which then go nowhere: released early, a write the client
// gave up on could overwrite one that came after it and was acknowledged.
func (r *Relay) relay(client, up net.Conn) {
	p := &pending{release: map[int32]func(){}, empty: make(chan struct{}, 1)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			msg, err := readMessage(up)
			if err != nil {
				_ = client.Close()
				return
			}
			p.done(responseTo(msg))
			if _, err := client.Write(msg); err != nil {
				_ = client.Close() // gone: read on, for the locks
			}
		}
	}()
	// The client's requests are read on their own goroutine, so that its
	// going away is seen while a request waits for its lock.
	in, gone, quit := make(chan []byte), make(chan struct{}), make(chan struct{})
	go func() {
		defer close(gone)
		for {
			msg, err := readMessage(client)
			if err != nil {
				return
			}
			select {
			case in <- msg:
			case <-quit:
				return
			}
		}
	}()
forward:
	for {
		var msg []byte
		select {
		case msg = <-in:
		case <-gone:
			break forward
		}
		unlock := r.locks.acquire(classify(msg))
		select {
		case <-gone:
			// The client left while its request waited for the lock: it
			// never reached the engine, and no one waits for its reply.
			// Dropped, it costs nothing (a client hanging up on writes
			// to one document in a loop queued them all for the engine).
			if unlock != nil {
				unlock()
			}
			break forward
		default:
		}
		if unlock != nil {
			p.add(requestID(msg), unlock)
		}
		if _, err := up.Write(msg); err != nil {
			break
		}
	}
	close(quit)
	timeout := time.After(abandonedWait)
wait:
	for p.waiting() {
		select {
		case <-p.empty: // the last reply came (or an earlier one: look again)
		case <-done: // the engine hung up: no reply will come
			break wait
		case <-timeout:
			break wait
		}
	}
	_ = up.Close()
	<-done
	_ = client.Close()
	<-gone
	p.releaseAll()
}

// pending holds the unlock functions of the writes awaiting their reply.
type pending struct {
	mu      sync.Mutex
	release map[int32]func()
	empty   chan struct{} // signalled when the last awaited reply came
}

func (p *pending) add(id int32, unlock func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if prev := p.release[id]; prev != nil { // a reused id: never leak a lock
		prev()
	}
	p.release[id] = unlock
}

func (p *pending) done(id int32) {
	p.mu.Lock()
	unlock := p.release[id]
	delete(p.release, id)
	if unlock != nil && len(p.release) == 0 {
		select {
		case p.empty <- struct{}{}:
		default:
		}
	}
	p.mu.Unlock()
	if unlock != nil {
		unlock()
	}
}

// waiting reports whether a write still awaits its reply.
func (p *pending) waiting() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.release) > 0
}

func (p *pending) releaseAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for id, unlock := range p.release {
		unlock()
		delete(p.release, id)
	}
}

// maxMessage is the largest message MongoDB accepts (48 MB).
const maxMessage = 48_000_000

// readMessage reads one whole wire-protocol message.
func readMessage(c net.Conn) ([]byte, error) {
	var size [4]byte
	if _, err := io.ReadFull(c, size[:]); err != nil {
		return nil, err
	}
	n := int(binary.LittleEndian.Uint32(size[:]))
	if n < headerLen || n > maxMessage {
		return nil, fmt.Errorf("wirelock: message of %d bytes", n)
	}
	msg := make([]byte, n)
	copy(msg, size[:])
	if _, err := io.ReadFull(c, msg[4:]); err != nil {
		return nil, err
	}
	return msg, nil
}

// locks are the relay's document locks. Keyed writes share all and hold
// their document's mutex; the others hold all exclusively.
type locks struct {
	all  sync.RWMutex
	mu   sync.Mutex
	keys map[string]*keyLock
}

type keyLock struct {
	sync.Mutex
	refs int // holders and waiters; the entry goes when it drops to 0
}

// acquire takes the lock a message needs and returns its unlock function,
// or nil when it needs none.
func (l *locks) acquire(s scope) func() {
	switch s.kind {
	case exclusive:
		l.all.Lock()
		return l.all.Unlock
	case perDocument:
		l.all.RLock()
		l.mu.Lock()
		k := l.keys[s.key]
		if k == nil {
			k = &keyLock{}
			l.keys[s.key] = k
		}
		k.refs++
		l.mu.Unlock()
		k.Lock()
		return func() {
			k.Unlock()
			l.mu.Lock()
			if k.refs--; k.refs == 0 {
				delete(l.keys, s.key)
			}
			l.mu.Unlock()
			l.all.RUnlock()
		}
	}
	return nil
}

// scope is what a message must lock.
type scope struct {
	kind int
	key  string // for perDocument: database, collection and _id
}

const (
	unlocked    = iota // a read, or a reply-less message
	perDocument        // a write to one document
	exclusive          // anything else that may write
)

// reads are the commands that never write. Every command not listed here
// and not a single-document write locks exclusively.
var reads = map[string]bool{
	"find": true, "getmore": true, "count": true, "distinct": true, "listcollections": true,
	"listindexes": true, "listdatabases": true, "hello": true, "ismaster": true, "ping": true,
	"buildinfo": true, "endsessions": true, "killcursors": true, "serverstatus": true,
	"dbstats": true, "collstats": true, "getparameter": true, "connectionstatus": true,
	"hostinfo": true, "whatsmyuri": true, "getcmdlineopts": true, "getlog": true,
	"explain": true, "datasize": true, "saslstart": true, "saslcontinue": true, "logout": true,
}

// writes name the array of statements of each single-document-capable
// write command, and the field of a statement that selects documents.
var writes = map[string]struct{ statements, filter string }{
	"insert":        {"documents", "_id"},
	"update":        {"updates", "q"},
	"delete":        {"deletes", "q"},
	"findandmodify": {"", "query"}, // the body is its one statement
}

// classify decides what a client message must lock.
func classify(msg []byte) scope {
	if opCode(msg) != opMsg {
		return scope{kind: exclusive} // legacy opcodes, compression: unknown
	}
	flags := binary.LittleEndian.Uint32(msg[headerLen:])
	if flags&moreToCome != 0 {
		return scope{} // no reply would ever release a lock
	}
	body, seqs, ok := sections(msg, flags)
	if !ok {
		return scope{kind: exclusive}
	}
	elems, err := body.Elements()
	if err != nil || len(elems) == 0 {
		return scope{kind: exclusive}
	}
	name := strings.ToLower(elems[0].Key())
	if reads[name] {
		return scope{}
	}
	w, isWrite := writes[name]
	coll, isString := elems[0].Value().StringValueOK()
	db, hasDB := body.Lookup("$db").StringValueOK()
	if !isWrite || !isString || !hasDB {
		return scope{kind: exclusive}
	}
	var statements []document
	switch {
	case w.statements == "":
		statements = []document{body}
	case seqs[w.statements] != nil:
		statements = seqs[w.statements]
	default:
		arr, ok := body.Lookup(w.statements).ArrayOK()
		if !ok {
			return scope{kind: exclusive}
		}
		vals, err := arr.Values()
		if err != nil {
			return scope{kind: exclusive}
		}
		for _, v := range vals {
			d, ok := v.DocumentOK()
			if !ok {
				return scope{kind: exclusive}
			}
			statements = append(statements, document(d))
		}
	}
	if len(statements) != 1 {
		return scope{kind: exclusive}
	}
	id, ok := idOf(statements[0], w.filter)
	if !ok {
		return scope{kind: exclusive}
	}
	return scope{kind: perDocument, key: db + "\x00" + coll + "\x00" + id}
}

// document is a BSON document as it travels.
type document = bsoncore.Document

// Wire protocol constants.
const (
	headerLen       = 16
	opMsg           = 2013
	checksumPresent = 1 << 0
	moreToCome      = 1 << 1
)

func requestID(msg []byte) int32  { return int32(binary.LittleEndian.Uint32(msg[4:])) }
func responseTo(msg []byte) int32 { return int32(binary.LittleEndian.Uint32(msg[8:])) }
func opCode(msg []byte) int32     { return int32(binary.LittleEndian.Uint32(msg[12:])) }

// sections returns the body of an OP_MSG and its document sequences by
// identifier.
func sections(msg []byte, flags uint32) (body document, seqs map[string][]document, ok bool) {
	rest := msg[headerLen+4:]
	if flags&checksumPresent != 0 {
		if len(rest) < 4 {
			return nil, nil, false
		}
		rest = rest[:len(rest)-4]
	}
	for len(rest) > 0 {
		var kind wiremessage.SectionType
		if kind, rest, ok = wiremessage.ReadMsgSectionType(rest); !ok {
			return nil, nil, false
		}
		switch kind {
		case wiremessage.SingleDocument:
			if body != nil {
				return nil, nil, false
			}
			if body, rest, ok = wiremessage.ReadMsgSectionSingleDocument(rest); !ok {
				return nil, nil, false
			}
		case wiremessage.DocumentSequence:
			var id string
			var docs []bsoncore.Document
			if id, docs, rest, ok = wiremessage.ReadMsgSectionDocumentSequence(rest); !ok {
				return nil, nil, false
			}
			if seqs == nil {
				seqs = map[string][]document{}
			}
			seqs[id] = docs
		default:
			return nil, nil, false
		}
	}
	return body, seqs, body != nil
}

// idOf returns, as a lock key, the _id that a write statement is pinned to:
// the inserted document's, or an equality in its filter. ok is false when
// the statement may touch any document. Only strings and ObjectIDs are
// keys: other types have several encodings of one value (1 and 1.0).
func idOf(statement document, filter string) (key string, ok bool) {
	d := statement
	if filter != "_id" {
		if d, ok = statement.Lookup(filter).DocumentOK(); !ok {
			return "", false
		}
	}
	v, err := d.LookupErr("_id")
	if err != nil {
		return "", false
	}
	switch v.Type {
	case bsoncore.TypeString, bsoncore.TypeObjectID:
		return string(rune(v.Type)) + string(v.Data), true
	}
	return "", false
}
