// Deliberately misbehaving minimal OpenID provider for negative RP tests.
// GET /mode?m=NAME selects what id_token POST /token returns (see MODES below); &query=Q makes
// the token endpoint and the JWKS ones with the query Q, answered only when asked with it;
// &jwks=hang: the JWKS endpoint never answers. GET /jwks-asked: how often it was asked.
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import * as jose from 'jose';

const env = process.env;
const port = Number(env.FAKE_PORT || 9090);
const ISS = env.FAKE_ISSUER || `http://127.0.0.1:${port}`;
const CLIENT_ID = env.FAKE_CLIENT_ID || 'pgw';
const keysFile = env.FAKE_KEYS || 'fake-keys.json';

async function newKey(alg, kid) {
  const { privateKey } = await jose.generateKeyPair(alg, { extractable: true });
  return { ...(await jose.exportJWK(privateKey)), kid, alg, use: 'sig' };
}
if (!fs.existsSync(keysFile)) {
  const keys = [await newKey('RS256', 'fake-rs'), await newKey('ES256', 'fake-es')];
  fs.writeFileSync(keysFile, JSON.stringify({ keys }, null, 2));
}
const jwks = JSON.parse(fs.readFileSync(keysFile, 'utf8')).keys;
const jwk = (kid) => jwks.find((k) => k.kid === kid);
const rs = await jose.importJWK(jwk('fake-rs'), 'RS256');
const es = await jose.importJWK(jwk('fake-es'), 'ES256');
const other = (await jose.generateKeyPair('RS256')).privateKey; // not published
const publicJwks = { keys: jwks.map(({ d, p, q, dp, dq, qi, ...pub }) => pub) };
// HMAC secret = the RS public key as PEM_write_bio_PUBKEY writes it (alg confusion attack)
const pem = `${await jose.exportSPKI(await jose.importJWK(publicJwks.keys.find((k) => k.kid === 'fake-rs'), 'RS256'))}\n`;

let mode = 'good';
let query = ''; // the query of the token endpoint and jwks_uri ('' for none)
let jwksHang = false;
let jwksAsked = 0;
const nonces = []; // every nonce seen at /auth, in order
const codes = new Map(); // code -> { challenge, redirect_uri }

const sign = (claims, alg, key, kid) => new jose.SignJWT(claims)
  .setProtectedHeader({ alg, kid, typ: 'JWT' }).sign(key);

function idToken() {
  const now = Math.floor(Date.now() / 1000);
  const c = {
    iss: ISS, aud: CLIENT_ID, sub: 'fake-user', preferred_username: 'fakeuser',
    groups: ['admins'], nonce: nonces.at(-1), iat: now, exp: now + 300,
  };
  switch (mode) {
    case 'good': return sign(c, 'RS256', rs, 'fake-rs');
    case 'es256': return sign(c, 'ES256', es, 'fake-es');
    case 'badsig': return sign(c, 'RS256', other, 'fake-rs');
    case 'aud': return sign({ ...c, aud: 'someone-else' }, 'RS256', rs, 'fake-rs');
    case 'iss': return sign({ ...c, iss: 'http://evil.example' }, 'RS256', rs, 'fake-rs');
    case 'expired': return sign({ ...c, iat: now - 1000, exp: now - 600 }, 'RS256', rs, 'fake-rs');
    case 'futureiat': return sign({ ...c, iat: now + 3600, exp: now + 4000 }, 'RS256', rs, 'fake-rs');
    case 'nonce': return sign({ ...c, nonce: nonces.at(-2) ?? 'stale-nonce' }, 'RS256', rs, 'fake-rs');
    case 'unknownkid': return sign(c, 'RS256', other, 'fake-unknown');
    case 'none': return new jose.UnsecuredJWT(c).encode();
    case 'hs256pem': return sign(c, 'HS256', new TextEncoder().encode(pem), 'fake-rs');
    case 'nogroups': return sign({ ...c, groups: [] }, 'RS256', rs, 'fake-rs');
    default: throw new Error(`unknown mode ${mode}`);
  }
}

function send(res, status, body, headers = {}) {
  const json = typeof body !== 'string';
  res.writeHead(status, { 'content-type': json ? 'application/json' : 'text/plain', 'cache-control': 'no-store', ...headers });
  res.end(json ? JSON.stringify(body) : body);
}

async function handle(req, res) {
  const url = new URL(req.url, ISS);
  const q = url.searchParams;
  if (req.method === 'GET' && url.pathname === '/.well-known/openid-configuration') {
    return send(res, 200, {
      issuer: ISS,
      authorization_endpoint: `${ISS}/auth`,
      token_endpoint: `${ISS}/token${query && `?${query}`}`,
      jwks_uri: `${ISS}/jwks${query && `?${query}`}`,
      end_session_endpoint: `${ISS}/end`,
      response_types_supported: ['code'],
      subject_types_supported: ['public'],
      id_token_signing_alg_values_supported: ['RS256', 'ES256'],
    });
  }
  if ((url.pathname === '/jwks' || url.pathname === '/token') && url.search !== (query && `?${query}`)) {
    return send(res, 404, `not found: the endpoint is ${url.pathname}${query && `?${query}`}`);
  }
  if (req.method === 'GET' && url.pathname === '/jwks') {
    jwksAsked += 1;
    if (jwksHang) return undefined; // held open, never answered
    return send(res, 200, publicJwks);
  }
  if (req.method === 'GET' && url.pathname === '/jwks-asked') return send(res, 200, String(jwksAsked));
  if (req.method === 'GET' && url.pathname === '/nonces') return send(res, 200, nonces);
  if (req.method === 'GET' && url.pathname === '/end') return send(res, 200, 'logged out');
  if (req.method === 'GET' && url.pathname === '/mode') {
    mode = q.get('m') || 'good';
    query = q.get('query') || '';
    jwksHang = q.get('jwks') === 'hang';
    return send(res, 200, `mode ${mode}${query && ` query ${query}`}`);
  }
  if (req.method === 'GET' && url.pathname === '/auth') {
    const code = crypto.randomBytes(16).toString('base64url');
    nonces.push(q.get('nonce'));
    codes.set(code, { challenge: q.get('code_challenge'), redirect_uri: q.get('redirect_uri') });
    const to = new URL(q.get('redirect_uri'));
    to.searchParams.set('code', code);
    if (q.has('state')) to.searchParams.set('state', q.get('state'));
    return send(res, 302, '', { location: to.href });
  }
  if (req.method === 'POST' && url.pathname === '/token') {
    let body = '';
    for await (const chunk of req) body += chunk;
    const p = new URLSearchParams(body);
    const [, b64 = ''] = (req.headers.authorization || '').split(' ');
    const id = decodeURIComponent(Buffer.from(b64, 'base64').toString().split(':')[0]);
    if (id !== CLIENT_ID) return send(res, 401, { error: 'invalid_client' });
    const c = codes.get(p.get('code'));
    codes.delete(p.get('code'));
    const hash = crypto.createHash('sha256').update(p.get('code_verifier') || '').digest('base64url');
    if (!c || !c.challenge || hash !== c.challenge) return send(res, 400, { error: 'invalid_grant' });
    return send(res, 200, {
      access_token: 'x', token_type: 'Bearer', expires_in: 300, id_token: await idToken(),
    });
  }
  return send(res, 404, 'not found');
}

const server = http.createServer((req, res) => handle(req, res).catch((err) => {
  console.error(`fake_op: ${err.message}`);
  send(res, 500, { error: 'server_error' });
}));
server.listen(port, env.FAKE_HOST || '127.0.0.1', () => console.log('fake ready'));
process.on('SIGTERM', () => { server.close(); server.closeAllConnections(); process.exit(0); });
process.on('SIGINT', () => process.exit(0));
