import { useState, type FormEvent } from 'react';
import { useApolloClient, useMutation, useQuery } from '@apollo/client/react';
import { sessionEnded } from './apollo';
import { errorCode, errorMessage } from './errors';
import type { PasskeysQuery as List } from './gql/graphql';
import {
  BeginPasskeyRegistrationMutation, DeletePasskeyMutation, FinishPasskeyRegistrationMutation, LogOutMutation,
  MeQuery, PasskeysQuery, RenamePasskeyMutation,
} from './operations';
import { createPasskey, passkeysSupported } from './passkeys';

type Passkey = List['passkeys'][number];

const when = (t: string) => new Date(t).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });

/**
 * Passkeys adds, lists, renames and deletes the user's passkeys, which
 * sign in with no username or password (LoginForm). Adding one is a
 * WebAuthn registration: beginPasskeyRegistration, the browser's prompt
 * (src/passkeys.ts), finishPasskeyRegistration. The server asks for a
 * recent sign-in first (FORBIDDEN otherwise); the section then offers to
 * sign in again.
 */
export function Passkeys() {
  const client = useApolloClient();
  const { data, error } = useQuery(PasskeysQuery);
  const [name, setName] = useState('');
  const [renaming, setRenaming] = useState<{ id: string; name: string } | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [failure, setFailure] = useState<string | null>(null);
  const [stale, setStale] = useState(false); // the sign-in is too old to add one
  const [busy, setBusy] = useState(false);
  const refetch = { refetchQueries: [PasskeysQuery], awaitRefetchQueries: true };
  const [begin] = useMutation(BeginPasskeyRegistrationMutation);
  const [finish] = useMutation(FinishPasskeyRegistrationMutation, refetch);
  const [rename] = useMutation(RenamePasskeyMutation, refetch);
  const [remove] = useMutation(DeletePasskeyMutation, refetch);
  const [logOut] = useMutation(LogOutMutation);
  const supported = passkeysSupported();

  // run performs one action, reporting its outcome. An UNAUTHENTICATED
  // answer has already sent the app back to the login form (see apollo.ts).
  async function run(action: () => Promise<string | null>) {
    setNotice(null);
    setFailure(null);
    setStale(false);
    setBusy(true);
    try {
      setNotice(await action());
    } catch (err) {
      const code = errorCode(err);
      if (code !== 'UNAUTHENTICATED') setFailure(errorMessage(err));
      if (code === 'FORBIDDEN') setStale(true);
    } finally {
      setBusy(false);
    }
  }

  const add = (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault();
    void run(async () => {
      const begun = (await begin()).data?.beginPasskeyRegistration;
      if (!begun) return null;
      const credential = await createPasskey(begun.options);
      const res = await finish({
        variables: { challengeId: begun.challengeId, credential, name: name.trim() || null },
      });
      setName('');
      return `Passkey “${res.data?.finishPasskeyRegistration.name}” added.`;
    });
  };

  // signInAgain ends this session and shows the login form, saying why.
  const signInAgain = () => void run(async () => {
    await logOut();
    await client.clearStore();
    sessionEnded('Sign in again, then add your passkey.');
    await client.refetchQueries({ include: [MeQuery] });
    return null;
  });

  const passkeys = data?.passkeys ?? [];
  return (
    <section className="card passkeys" aria-label="Passkeys">
      <h2>Passkeys</h2>
      <p className="muted">A passkey signs you in with this device's screen lock or security key, without a
        username or password.</p>
      {supported ? (
        <form aria-label="Add a passkey" onSubmit={add}>
          <label>
            Name (optional)
            <input name="passkey-name" maxLength={64} placeholder="e.g. work laptop" value={name}
              onChange={(e) => setName(e.target.value)} />
          </label>
          <button type="submit" disabled={busy}>Add a passkey</button>
        </form>
      ) : (
        <p className="warning">This browser cannot use passkeys.</p>
      )}
      {notice && <p role="status" className="notice">{notice}</p>}
      {failure && (
        <div role="alert" className="error">
          <p>{failure}</p>
          {stale && <p><button className="secondary" onClick={signInAgain}>Sign in again</button> to add a passkey
            right after signing in.</p>}
        </div>
      )}
      {error && errorCode(error) !== 'UNAUTHENTICATED' && <p role="alert" className="error">{errorMessage(error)}</p>}
      {data && passkeys.length === 0 && <p className="muted">No passkeys yet.</p>}
      {passkeys.length > 0 && (
        <table>
          <thead>
            <tr><th>Name</th><th>Added</th><th>Last used</th><th /></tr>
          </thead>
          <tbody>
            {passkeys.map((p: Passkey) => (
              <tr key={p.id} data-passkey-id={p.id}>
                <td>
                  {renaming?.id === p.id ? (
                    <form aria-label={`Rename passkey ${p.name}`} className="rename" onSubmit={(e) => {
                      e.preventDefault();
                      void run(async () => {
                        const res = await rename({ variables: { id: p.id, name: renaming.name.trim() } });
                        setRenaming(null);
                        return res.data?.renamePasskey ? 'Passkey renamed.' : 'That passkey had already been deleted.';
                      });
                    }}>
                      <input aria-label="New name" required maxLength={64} value={renaming.name}
                        onChange={(e) => setRenaming({ id: p.id, name: e.target.value })} />
                      <button type="submit" disabled={busy}>Save</button>
                      <button type="button" className="secondary" onClick={() => setRenaming(null)}>Cancel</button>
                    </form>
                  ) : <span className="passkey-name">{p.name}</span>}
                </td>
                <td>{when(p.createdAt)}</td>
                <td>{p.lastUsedAt ? when(p.lastUsedAt) : 'never'}</td>
                <td>
                  <div className="actions">
                    <button className="secondary" aria-label={`Rename passkey ${p.name}`} disabled={busy}
                      onClick={() => setRenaming({ id: p.id, name: p.name })}>Rename</button>
                    <button className="danger" aria-label={`Delete passkey ${p.name}`} disabled={busy}
                      onClick={() => void run(async () => {
                        const res = await remove({ variables: { id: p.id } });
                        return res.data?.deletePasskey
                          ? `Passkey “${p.name}” deleted. Your device may still offer it: it no longer signs you in.`
                          : 'That passkey had already been deleted.';
                      })}>Delete</button>
                  </div>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
