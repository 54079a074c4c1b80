// A real, certified OpenID Provider (panva/oidc-provider) on 127.0.0.1, behind a WAF-like rule.
//
//   node tests/oidc/server.js
//
// Listens on a random loopback port and prints one JSON line to stdout when ready:
//   {"issuer": ..., "jwks_uri": ..., "token_endpoint": ..., "client_id": ..., "client_secret": ..., "resource": ...}
//
// * One confidential client with the client_credentials grant; access tokens for the resource
//   RESOURCE are RS256-signed JWTs (resourceIndicators feature, accessTokenFormat "jwt").
// * The WAF rule: GET /jwks with a missing User-Agent or one starting with "Python-urllib" gets
//   an HTML 403 (what many CDN/WAF-fronted providers do to PyJWT's default client).
// * Test hooks (loopback only, not part of OpenID): POST /_test/rotate makes a new RS256 key the
//   signing key (the old one stays published after it); GET /_test/jwks-requests lists every JWKS
//   request as {"ua", "status"}.
import * as crypto from 'node:crypto';
import * as http from 'node:http';

import Provider from 'oidc-provider';

const CLIENT_ID = 'sjp-service';
const CLIENT_SECRET = crypto.randomBytes(24).toString('hex');
const RESOURCE = 'https://api.sjp.test/';

const jwksRequests = [];
let keys = [];
let provider;
let issuer;

function newKey() {
  const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = privateKey.export({ format: 'jwk' });
  return { ...jwk, kid: `sjp-${crypto.randomBytes(6).toString('hex')}`, use: 'sig', alg: 'RS256' };
}

function build() {
  const op = new Provider(issuer, {
    clients: [
      {
        client_id: CLIENT_ID,
        client_secret: CLIENT_SECRET,
        grant_types: ['client_credentials'],
        redirect_uris: [],
        response_types: [],
      },
    ],
    jwks: { keys },
    cookies: { keys: [crypto.randomBytes(16).toString('hex')] },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => RESOURCE,
        useGrantedResource: () => true,
        getResourceServerInfo: (ctx, resourceIndicator) => {
          if (resourceIndicator !== RESOURCE) throw new Error(`unknown resource ${resourceIndicator}`);
          return {
            scope: 'api:read',
            audience: RESOURCE,
            accessTokenTTL: 600,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg: 'RS256' } },
          };
        },
      },
    },
  });
  return op.callback();
}

let handler;

const server = http.createServer((req, res) => {
  const path = req.url.split('?')[0];
  if (path === '/_test/rotate' && req.method === 'POST') {
    keys = [newKey(), ...keys]; // the first RS256 key signs
    handler = build();
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ kids: keys.map((k) => k.kid) }));
    return;
  }
  if (path === '/_test/jwks-requests') {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(jwksRequests));
    return;
  }
  if (path === '/jwks') {
    const ua = req.headers['user-agent'] || '';
    if (!ua || ua.startsWith('Python-urllib')) {
      jwksRequests.push({ ua, status: 403 });
      res.writeHead(403, { 'content-type': 'text/html;charset=utf-8', connection: 'close' });
      res.end('<html><body><h1>403 Forbidden</h1>Request blocked by WAF rule UA-01</body></html>');
      return;
    }
    jwksRequests.push({ ua, status: 200 });
  }
  handler(req, res);
});

server.listen(0, '127.0.0.1', () => {
  const { port } = server.address();
  issuer = `http://127.0.0.1:${port}`;
  keys = [newKey()];
  handler = build();
  process.stdout.write(
    `${JSON.stringify({
      issuer,
      jwks_uri: `${issuer}/jwks`,
      token_endpoint: `${issuer}/token`,
      client_id: CLIENT_ID,
      client_secret: CLIENT_SECRET,
      resource: RESOURCE,
    })}\n`,
  );
});

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => {
    server.close();
    server.closeAllConnections();
    process.exit(0);
  });
}
