//! Request heads both benches time: what a browser and an API client send.

pub const BROWSER_GET: (&str, &[u8]) = (
    "browser GET (12 fields)",
    b"GET /articles/2026/12/how-to-run-python-apps?page=2&sort=new HTTP/1.1\r\n\
Host: www.example.com\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:130.0) Gecko/20100101 Firefox/130.0\r\n\
Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n\
Accept-Language: en-US,en;q=0.5\r\n\
Accept-Encoding: gzip, deflate, br, zstd\r\n\
Referer: https://www.example.com/articles/2026/12/\r\n\
Connection: keep-alive\r\n\
Cookie: session=3f2a9c0e8b7d4e1fa0c2; theme=dark; consent=1\r\n\
Upgrade-Insecure-Requests: 1\r\n\
Sec-Fetch-Dest: document\r\n\
Sec-Fetch-Mode: navigate\r\n\
Priority: u=0, i\r\n\r\n",
);

pub const API_POST: (&str, &[u8]) = (
    "API POST (6 fields)",
    b"POST /api/v1/orders HTTP/1.1\r\n\
Host: api.example.com\r\n\
Content-Type: application/json\r\n\
Content-Length: 512\r\n\
Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJl\r\n\
Accept: application/json\r\n\
X-Request-Id: 7b0c3f1e-2d4a-4c8e-9f6b-1a2b3c4d5e6f\r\n\r\n",
);
