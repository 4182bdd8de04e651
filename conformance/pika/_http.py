"""The management HTTP API as the differential scripts call it: JSON in
and out, basic auth, and the status with the decoded answer (or the raw
text when it is not JSON). Not a script of its own: record.sh skips it."""
import base64, json, urllib.error, urllib.request


def client(http_port):
    def http(method, path, body=None, user='guest', password='guest'):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(f'http://127.0.0.1:{http_port}/api/{path}', data=data, method=method)
        req.add_header('content-type', 'application/json')
        if user is not None:
            token = base64.b64encode(f'{user}:{password}'.encode()).decode()
            req.add_header('authorization', f'Basic {token}')
        try:
            with urllib.request.urlopen(req) as r:
                text = r.read().decode()
                return r.status, (json.loads(text) if text else None)
        except urllib.error.HTTPError as e:
            text = e.read().decode()
            try:
                return e.code, json.loads(text)
            except ValueError:
                return e.code, text
    return http
