// Package softauthn is a software WebAuthn authenticator for gatehouse's
// tests: a CTAP2 platform authenticator holding ES256 (P-256) passkeys in
// memory, together with the browser's part of the ceremony (the client data,
// the checks a browser makes, and PublicKeyCredential.toJSON()). It lets a
// Go test register and sign in with real keys through the real server, and
// forge what an attacker could send (another origin, another RP ID hash, no
// user verification, a replayed assertion, a cloned credential).
//
// It is test support: only tests import it, and it keeps its private keys
// in memory without protection.
//
// Its inputs are the JSON that browsers' parseCreationOptionsFromJSON and
// parseRequestOptionsFromJSON accept (binary members as unpadded base64url);
// its outputs are the JSON of toJSON() (WebAuthn Level 3, §5.1). It behaves
// as a synced platform passkey would: attestation "none" with a zero AAGUID,
// transports ["internal"], attachment "platform", a discoverable credential
// always, user verification always performed, and the flags UP, UV, BE and
// BS (plus AT at registration). The signature counter starts at 0 and grows
// by one per assertion.
package softauthn

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/protocol/webauthncbor"
	"github.com/go-webauthn/webauthn/protocol/webauthncose"
)

// The errors a browser would report as DOMExceptions of the same name.
var (
	// ErrInvalidState is returned by Create when excludeCredentials names a
	// credential this authenticator holds for the RP.
	ErrInvalidState = errors.New("softauthn: InvalidStateError")
	// ErrNotAllowed is returned by Get when no credential fits the request,
	// and by Create when the options ask for a cross-platform authenticator.
	ErrNotAllowed = errors.New("softauthn: NotAllowedError")
	// ErrNotSupported is returned by Create when pubKeyCredParams has no
	// ES256 public-key entry.
	ErrNotSupported = errors.New("softauthn: NotSupportedError")
	// ErrSecurity is returned when the RP ID is neither the page origin's
	// host nor a parent domain of it.
	ErrSecurity = errors.New("softauthn: SecurityError")
)

// Credential is a resident credential (a passkey) held by an Authenticator.
// A copy passed to another Authenticator's Import is a clone: both sign with
// the same key and count separately.
type Credential struct {
	ID         []byte            // the credential ID (32 random bytes)
	RPID       string            // the RP ID it is scoped to
	UserHandle []byte            // user.id of the creation options
	UserName   string            // user.name of the creation options
	SignCount  uint32            // the counter of the last assertion (0 after creation)
	PrivateKey *ecdsa.PrivateKey // the P-256 key it signs with
}

// Authenticator is one platform authenticator with its browser. It is safe
// for concurrent use.
type Authenticator struct {
	origin string

	mu    sync.Mutex
	creds []*Credential // in order of creation; the last is the most recent
	last  []byte        // the last assertion Get returned
}

// New returns an empty authenticator whose browser is on the page origin
// (e.g. "http://localhost:8080").
func New(origin string) *Authenticator {
	return &Authenticator{origin: origin}
}

// Option forges one ceremony: it makes the browser or the authenticator
// report what an honest one would not.
type Option func(*forgery)

type forgery struct {
	origin   string // "": the page origin
	rpIDHash []byte // nil: SHA-256 of the RP ID
	noUV     bool
	packed   *packed // nil: attestation "none"
}

type packed struct {
	key *ecdsa.PrivateKey
	x5c [][]byte
}

// WithOrigin writes origin into the client data instead of the page origin,
// as a tampered browser or a phishing relay would. The browser's check that
// the RP ID fits the origin still uses the page origin.
func WithOrigin(origin string) Option { return func(f *forgery) { f.origin = origin } }

// WithRPIDHash writes hash into the authenticator data instead of the SHA-256
// of the RP ID, as an authenticator scoped to another RP would.
func WithRPIDHash(hash []byte) Option {
	return func(f *forgery) { f.rpIDHash = bytes.Clone(hash) }
}

// WithoutUserVerification clears the UV flag: the user was present but not
// verified (no PIN, no biometric).
func WithoutUserVerification() Option { return func(f *forgery) { f.noUV = true } }

// WithPackedAttestation makes Create return a "packed" attestation (§8.2)
// signed by key, carrying x5c: the DER attestation certificate of key first,
// then any CA certificates, as an authenticator with a vendor certificate
// chain would. It is honest, not a forgery; it makes a credential as large
// as its chain.
func WithPackedAttestation(key *ecdsa.PrivateKey, x5c ...[]byte) Option {
	return func(f *forgery) { f.packed = &packed{key: key, x5c: x5c} }
}

// AttestationChain returns a new attestation key and its x5c for
// WithPackedAttestation: an attestation certificate meeting §8.2.1 (version
// 3, subject C, O, OU "Authenticator Attestation" and CN, not a CA), issued
// by the first of cas CA certificates, each issued by the next. Each CA
// certificate carries pad bytes in a non-critical private extension, as
// vendor certificates carry their policies, so a test can make the
// credential as large as a long chain makes it.
func AttestationChain(cas, pad int) (*ecdsa.PrivateKey, [][]byte, error) {
	keys := make([]*ecdsa.PrivateKey, cas+1)
	for i := range keys {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, nil, err
		}
		keys[i] = k
	}
	now := time.Now()
	template := func(i int) *x509.Certificate {
		return &x509.Certificate{
			SerialNumber:          big.NewInt(int64(i + 1)),
			NotBefore:             now.Add(-time.Hour),
			NotAfter:              now.Add(24 * time.Hour),
			BasicConstraintsValid: true,
		}
	}
	x5c := make([][]byte, cas+1)
	// The chain is built from its root (the last) down, so that each
	// certificate's issuer exists when it is signed.
	var parent *x509.Certificate
	for i := cas; i >= 0; i-- {
		c := template(i)
		if i == 0 {
			c.Subject = pkix.Name{Country: []string{"US"}, Organization: []string{"softauthn"},
				OrganizationalUnit: []string{"Authenticator Attestation"}, CommonName: "softauthn attestation"}
		} else {
			c.Subject = pkix.Name{Organization: []string{"softauthn"}, CommonName: fmt.Sprintf("softauthn CA %d", i)}
			c.IsCA, c.KeyUsage = true, x509.KeyUsageCertSign
			c.ExtraExtensions = []pkix.Extension{{Id: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 99999, 1}, Value: make([]byte, pad)}}
		}
		issuer, issuerKey := c, keys[i]
		if parent != nil {
			issuer, issuerKey = parent, keys[i+1]
		}
		der, err := x509.CreateCertificate(rand.Reader, c, issuer, &keys[i].PublicKey, issuerKey)
		if err != nil {
			return nil, nil, err
		}
		if parent, err = x509.ParseCertificate(der); err != nil {
			return nil, nil, err
		}
		x5c[i] = der
	}
	return keys[0], x5c, nil
}

// Credentials returns copies of the credentials held, oldest first. A copy
// is an export: Import it into another Authenticator to clone the passkey.
func (a *Authenticator) Credentials() []Credential {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]Credential, len(a.creds))
	for i, c := range a.creds {
		out[i] = *c
		out[i].ID, out[i].UserHandle = bytes.Clone(c.ID), bytes.Clone(c.UserHandle)
	}
	return out
}

// Import adds a copy of c as the most recent credential, replacing one with
// the same ID.
func (a *Authenticator) Import(c Credential) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.creds = remove(a.creds, c.ID)
	c.ID, c.UserHandle = bytes.Clone(c.ID), bytes.Clone(c.UserHandle)
	a.creds = append(a.creds, &c)
}

func remove(creds []*Credential, id []byte) []*Credential {
	out := creds[:0]
	for _, c := range creds {
		if !bytes.Equal(c.ID, id) {
			out = append(out, c)
		}
	}
	return out
}

// SetSignCount sets the signature counter of the credential with this ID;
// the next assertion reports n+1. A value below what the server has seen
// simulates a cloned authenticator.
func (a *Authenticator) SetSignCount(id []byte, n uint32) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, c := range a.creds {
		if bytes.Equal(c.ID, id) {
			c.SignCount = n
			return nil
		}
	}
	return fmt.Errorf("softauthn: no credential %s", b64(id))
}

// LastAssertion returns the credential JSON Get last returned (nil before
// the first), to be replayed.
func (a *Authenticator) LastAssertion() []byte {
	a.mu.Lock()
	defer a.mu.Unlock()
	return bytes.Clone(a.last)
}

// creationOptions is PublicKeyCredentialCreationOptionsJSON (the members
// this authenticator reads).
type creationOptions struct {
	RP struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	} `json:"rp"`
	User struct {
		ID          string `json:"id"`
		Name        string `json:"name"`
		DisplayName string `json:"displayName"`
	} `json:"user"`
	Challenge        string `json:"challenge"`
	PubKeyCredParams []struct {
		Type string `json:"type"`
		Alg  int64  `json:"alg"`
	} `json:"pubKeyCredParams"`
	ExcludeCredentials     []descriptor `json:"excludeCredentials"`
	AuthenticatorSelection struct {
		AuthenticatorAttachment string `json:"authenticatorAttachment"`
	} `json:"authenticatorSelection"`
}

// requestOptions is PublicKeyCredentialRequestOptionsJSON (the members
// this authenticator reads).
type requestOptions struct {
	Challenge        string       `json:"challenge"`
	RPID             string       `json:"rpId"`
	AllowCredentials []descriptor `json:"allowCredentials"`
}

type descriptor struct {
	Type string `json:"type"`
	ID   string `json:"id"`
}

// clientData is CollectedClientData, its members in the order of the
// spec's serialization (§5.8.1.1).
type clientData struct {
	Type        string `json:"type"`
	Challenge   string `json:"challenge"`
	Origin      string `json:"origin"`
	CrossOrigin bool   `json:"crossOrigin"`
}

// registrationJSON is RegistrationResponseJSON.
type registrationJSON struct {
	ID       string `json:"id"`
	RawID    string `json:"rawId"`
	Response struct {
		ClientDataJSON     string   `json:"clientDataJSON"`
		AuthenticatorData  string   `json:"authenticatorData"`
		Transports         []string `json:"transports"`
		PublicKey          string   `json:"publicKey"`
		PublicKeyAlgorithm int64    `json:"publicKeyAlgorithm"`
		AttestationObject  string   `json:"attestationObject"`
	} `json:"response"`
	AuthenticatorAttachment string         `json:"authenticatorAttachment"`
	ClientExtensionResults  map[string]any `json:"clientExtensionResults"`
	Type                    string         `json:"type"`
}

// authenticationJSON is AuthenticationResponseJSON.
type authenticationJSON struct {
	ID       string `json:"id"`
	RawID    string `json:"rawId"`
	Response struct {
		ClientDataJSON    string `json:"clientDataJSON"`
		AuthenticatorData string `json:"authenticatorData"`
		Signature         string `json:"signature"`
		UserHandle        string `json:"userHandle"`
	} `json:"response"`
	AuthenticatorAttachment string         `json:"authenticatorAttachment"`
	ClientExtensionResults  map[string]any `json:"clientExtensionResults"`
	Type                    string         `json:"type"`
}

// attestationObject is the CBOR map {"fmt", "attStmt", "authData"}.
type attestationObject struct {
	Fmt      string         `cbor:"fmt"`
	AttStmt  map[string]any `cbor:"attStmt"`
	AuthData []byte         `cbor:"authData"`
}

// Create runs navigator.credentials.create() with the creation options'
// JSON (the publicKey member, or the {"publicKey": ...} wrapper around it)
// and returns the new credential's toJSON().
func (a *Authenticator) Create(optionsJSON []byte, opts ...Option) ([]byte, error) {
	var o creationOptions
	if err := unwrap(optionsJSON, &o); err != nil {
		return nil, err
	}
	f := forge(opts)
	challenge, err := unb64("challenge", o.Challenge)
	if err != nil {
		return nil, err
	}
	userHandle, err := unb64("user.id", o.User.ID)
	if err != nil {
		return nil, err
	}
	if len(challenge) == 0 || len(userHandle) == 0 || len(userHandle) > 64 {
		return nil, fmt.Errorf("softauthn: TypeError: challenge empty or user.id not 1 to 64 bytes")
	}
	rpID, err := a.rpID(o.RP.ID)
	if err != nil {
		return nil, err
	}
	if !supportsES256(o) {
		return nil, fmt.Errorf("%w: pubKeyCredParams without ES256", ErrNotSupported)
	}
	if o.AuthenticatorSelection.AuthenticatorAttachment == "cross-platform" {
		return nil, fmt.Errorf("%w: a cross-platform authenticator was asked for", ErrNotAllowed)
	}

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	id := make([]byte, 32)
	if _, err := rand.Read(id); err != nil {
		return nil, err
	}
	cose, spki, err := publicKeys(key)
	if err != nil {
		return nil, err
	}

	exclude, err := ids("excludeCredentials", o.ExcludeCredentials)
	if err != nil {
		return nil, err
	}

	a.mu.Lock()
	defer a.mu.Unlock()
	for _, c := range a.creds {
		if c.RPID == rpID && contains(exclude, c.ID) {
			return nil, fmt.Errorf("%w: excludeCredentials names credential %s", ErrInvalidState, b64(c.ID))
		}
	}
	cred := &Credential{ID: id, RPID: rpID, UserHandle: userHandle, UserName: o.User.Name, PrivateKey: key}
	// A new passkey replaces the one of the same user on the same RP, as
	// platform authenticators do.
	kept := a.creds[:0]
	for _, c := range a.creds {
		if c.RPID != rpID || !bytes.Equal(c.UserHandle, userHandle) {
			kept = append(kept, c)
		}
	}
	a.creds = append(kept, cred)

	cdj, err := a.clientDataJSON("webauthn.create", o.Challenge, f)
	if err != nil {
		return nil, err
	}
	// attested credential data: AAGUID (zero), credential ID length, ID, key.
	attested := make([]byte, 16, 16+2+len(id)+len(cose))
	attested = binary.BigEndian.AppendUint16(attested, uint16(len(id)))
	attested = append(append(attested, id...), cose...)
	authData := authenticatorData(rpID, f, protocol.FlagAttestedCredentialData, cred.SignCount, attested)
	att := attestationObject{Fmt: "none", AttStmt: map[string]any{}, AuthData: authData}
	if f.packed != nil {
		// sig is over authenticatorData | SHA-256(clientDataJSON).
		cdHash := sha256.Sum256(cdj)
		digest := sha256.Sum256(append(bytes.Clone(authData), cdHash[:]...))
		sig, err := ecdsa.SignASN1(rand.Reader, f.packed.key, digest[:])
		if err != nil {
			return nil, err
		}
		att.Fmt = "packed"
		att.AttStmt = map[string]any{"alg": int64(webauthncose.AlgES256), "sig": sig, "x5c": f.packed.x5c}
	}
	attObj, err := webauthncbor.Marshal(att)
	if err != nil {
		return nil, err
	}

	var r registrationJSON
	r.ID, r.RawID, r.Type = b64(id), b64(id), "public-key"
	r.Response.ClientDataJSON = b64(cdj)
	r.Response.AuthenticatorData = b64(authData)
	r.Response.Transports = []string{"internal"}
	r.Response.PublicKey = b64(spki)
	r.Response.PublicKeyAlgorithm = int64(webauthncose.AlgES256)
	r.Response.AttestationObject = b64(attObj)
	r.AuthenticatorAttachment = "platform"
	r.ClientExtensionResults = map[string]any{}
	return json.Marshal(r)
}

// Get runs navigator.credentials.get() with the request options' JSON (the
// publicKey member, or the {"publicKey": ...} wrapper around it) and returns
// the assertion's toJSON(). With an empty allowCredentials it uses the most
// recent credential for the RP ID (a discoverable login); otherwise the most
// recent of its own credentials the list names. Each assertion increments
// the credential's signature counter.
func (a *Authenticator) Get(optionsJSON []byte, opts ...Option) ([]byte, error) {
	var o requestOptions
	if err := unwrap(optionsJSON, &o); err != nil {
		return nil, err
	}
	f := forge(opts)
	if challenge, err := unb64("challenge", o.Challenge); err != nil {
		return nil, err
	} else if len(challenge) == 0 {
		return nil, fmt.Errorf("softauthn: TypeError: challenge empty")
	}
	rpID, err := a.rpID(o.RPID)
	if err != nil {
		return nil, err
	}
	allow, err := ids("allowCredentials", o.AllowCredentials)
	if err != nil {
		return nil, err
	}

	a.mu.Lock()
	defer a.mu.Unlock()
	var cred *Credential
	for _, c := range a.creds {
		if c.RPID == rpID && (len(o.AllowCredentials) == 0 || contains(allow, c.ID)) {
			cred = c // the last match is the most recent
		}
	}
	if cred == nil {
		return nil, fmt.Errorf("%w: no credential for RP %q fits allowCredentials", ErrNotAllowed, rpID)
	}
	cred.SignCount++

	cdj, err := a.clientDataJSON("webauthn.get", o.Challenge, f)
	if err != nil {
		return nil, err
	}
	authData := authenticatorData(rpID, f, 0, cred.SignCount, nil)
	cdHash := sha256.Sum256(cdj)
	digest := sha256.Sum256(append(bytes.Clone(authData), cdHash[:]...))
	sig, err := ecdsa.SignASN1(rand.Reader, cred.PrivateKey, digest[:])
	if err != nil {
		return nil, err
	}

	var r authenticationJSON
	r.ID, r.RawID, r.Type = b64(cred.ID), b64(cred.ID), "public-key"
	r.Response.ClientDataJSON = b64(cdj)
	r.Response.AuthenticatorData = b64(authData)
	r.Response.Signature = b64(sig)
	r.Response.UserHandle = b64(cred.UserHandle)
	r.AuthenticatorAttachment = "platform"
	r.ClientExtensionResults = map[string]any{}
	out, err := json.Marshal(r)
	if err != nil {
		return nil, err
	}
	a.last = bytes.Clone(out)
	return out, nil
}

// unwrap decodes options JSON into v, accepting the library's and the
// server's {"publicKey": {...}} wrapper too.
func unwrap(data []byte, v any) error {
	var w struct {
		PublicKey json.RawMessage `json:"publicKey"`
	}
	if err := json.Unmarshal(data, &w); err != nil {
		return fmt.Errorf("softauthn: options: %w", err)
	}
	if len(w.PublicKey) > 0 {
		data = w.PublicKey
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("softauthn: options: %w", err)
	}
	return nil
}

func forge(opts []Option) forgery {
	var f forgery
	for _, o := range opts {
		o(&f)
	}
	return f
}

// rpID returns the RP ID a browser would use: the given one if it is the
// page origin's host or a parent domain of it, the host if none is given.
func (a *Authenticator) rpID(rpID string) (string, error) {
	u, err := url.Parse(a.origin)
	if err != nil || u.Hostname() == "" {
		return "", fmt.Errorf("softauthn: origin %q is not a URL with a host", a.origin)
	}
	host := u.Hostname()
	if rpID == "" {
		return host, nil
	}
	if rpID != host && !strings.HasSuffix(host, "."+rpID) {
		return "", fmt.Errorf("%w: RP ID %q does not fit origin %q", ErrSecurity, rpID, a.origin)
	}
	return rpID, nil
}

func (a *Authenticator) clientDataJSON(typ, challenge string, f forgery) ([]byte, error) {
	origin := a.origin
	if f.origin != "" {
		origin = f.origin
	}
	return json.Marshal(clientData{Type: typ, Challenge: challenge, Origin: origin})
}

// authenticatorData is rpIdHash | flags | signCount | attested (§6.1).
func authenticatorData(rpID string, f forgery, extra protocol.AuthenticatorFlags, signCount uint32, attested []byte) []byte {
	hash := sha256.Sum256([]byte(rpID))
	rpIDHash := hash[:]
	if f.rpIDHash != nil {
		rpIDHash = f.rpIDHash
	}
	flags := protocol.FlagUserPresent | protocol.FlagUserVerified | protocol.FlagBackupEligible | protocol.FlagBackupState | extra
	if f.noUV {
		flags &^= protocol.FlagUserVerified
	}
	out := append(bytes.Clone(rpIDHash), byte(flags))
	out = binary.BigEndian.AppendUint32(out, signCount)
	return append(out, attested...)
}

// publicKeys returns the public key as a COSE_Key and as a DER
// SubjectPublicKeyInfo.
func publicKeys(key *ecdsa.PrivateKey) (cose, spki []byte, err error) {
	pub, err := key.PublicKey.ECDH()
	if err != nil {
		return nil, nil, err
	}
	xy := pub.Bytes()[1:] // uncompressed point: 0x04 | X | Y
	cose, err = webauthncbor.Marshal(webauthncose.EC2PublicKeyData{
		PublicKeyData: webauthncose.PublicKeyData{KeyType: int64(webauthncose.EllipticKey), Algorithm: int64(webauthncose.AlgES256)},
		Curve:         int64(webauthncose.P256),
		XCoord:        xy[:32],
		YCoord:        xy[32:],
	})
	if err != nil {
		return nil, nil, err
	}
	spki, err = x509.MarshalPKIXPublicKey(&key.PublicKey)
	return cose, spki, err
}

func supportsES256(o creationOptions) bool {
	if len(o.PubKeyCredParams) == 0 { // the spec's default: ES256 and RS256
		return true
	}
	for _, p := range o.PubKeyCredParams {
		if p.Type == "public-key" && p.Alg == int64(webauthncose.AlgES256) {
			return true
		}
	}
	return false
}

// ids decodes the IDs of a descriptor list's public-key entries.
func ids(member string, list []descriptor) ([][]byte, error) {
	var out [][]byte
	for _, d := range list {
		id, err := unb64(member+"[].id", d.ID)
		if err != nil {
			return nil, err
		}
		if d.Type == "public-key" {
			out = append(out, id)
		}
	}
	return out, nil
}

func contains(ids [][]byte, id []byte) bool {
	for _, x := range ids {
		if bytes.Equal(x, id) {
			return true
		}
	}
	return false
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// unb64 decodes a Base64URLString: base64url without padding, as the spec
// defines it.
func unb64(member, s string) ([]byte, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("softauthn: EncodingError: %s is not unpadded base64url: %w", member, err)
	}
	return b, nil
}
