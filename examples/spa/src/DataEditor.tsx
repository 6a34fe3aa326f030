import { useState } from 'react';
import { useMutation } from '@apollo/client/react';
import { errorCode, errorMessage } from './errors';
import type { SessionsQuery } from './gql/graphql';
import { SaveSessionDataMutation } from './operations';

type Session = NonNullable<SessionsQuery['session']>;

/**
 * DataEditor edits the current session's data: a JSON object the app keeps
 * on the server for this device (preferences, a cart, ...).
 */
export function DataEditor({ session }: { session: Session }) {
  const [text, setText] = useState(() => JSON.stringify(session.data, null, 2));
  const [status, setStatus] = useState<{ ok: boolean; text: string } | null>(null);
  const [save, { loading }] = useMutation(SaveSessionDataMutation);

  async function submit() {
    let data: unknown;
    try {
      data = JSON.parse(text);
    } catch (err) {
      setStatus({ ok: false, text: `Not JSON: ${(err as Error).message}` });
      return;
    }
    if (typeof data !== 'object' || data === null || Array.isArray(data)) {
      setStatus({ ok: false, text: 'The data must be a JSON object, like {"theme": "dark"}.' });
      return;
    }
    try {
      const res = await save({ variables: { data: data as Record<string, unknown> } });
      setText(JSON.stringify(res.data?.updateSessionData.data, null, 2));
      setStatus({ ok: true, text: 'Saved.' });
    } catch (err) {
      if (errorCode(err) !== 'UNAUTHENTICATED') setStatus({ ok: false, text: errorMessage(err) });
    }
  }

  return (
    <section className="card" aria-label="Session data">
      <h2>This session's data</h2>
      <p className="muted">Kept on the server with this session only; gone when it ends.</p>
      <textarea aria-label="Session data (JSON)" rows={6} spellCheck={false} value={text}
        onChange={(e) => setText(e.target.value)} />
      <div className="row">
        {status ? <p role={status.ok ? 'status' : 'alert'} className={status.ok ? 'notice' : 'error'}>{status.text}</p> : <span />}
        <button disabled={loading} onClick={() => void submit()}>Save data</button>
      </div>
    </section>
  );
}
