"""Views of the test project: ``home`` renders a template; ``echo`` is a form whose POST must carry
Django's CSRF token (checked by the default CsrfViewMiddleware) and shows the submitted message.

The ``async def`` views are for the ASGI entry point (django_site/asgi.py): they read the notes
through the ORM's async API, read a request body, and stream a response from an async generator
that waits for a second request before it ends (so a test can see the first part arrive alone,
or leave and see the generator closed)."""

import asyncio
import hashlib

from django.http import Http404, JsonResponse, StreamingHttpResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST

from django_site.pages.models import Note

# How long a streamed response waits for its release before it ends anyway.
RELEASE_TIMEOUT = 20
# The streams waiting for their release, by the token the client chose (one event loop per worker).
_RELEASES = {}


def home(request):
    return render(request, "pages/home.html", {"method": request.method, "path": request.path})


@require_http_methods(["GET", "POST"])
def echo(request):
    message = request.POST.get("message") if request.method == "POST" else None
    return render(request, "pages/echo.html", {"message": message})


async def notes(request):
    """The notes as JSON, the one named by ``?slug=`` looked up with ``aget``, and who is signed in."""
    listed = [{"slug": note.slug, "title": note.title} async for note in Note.objects.all()]
    found = None
    if "slug" in request.GET:
        try:
            found = (await Note.objects.aget(slug=request.GET["slug"])).title
        except Note.DoesNotExist:
            raise Http404("no such note")
    user = await request.auser()
    return JsonResponse(
        {
            "notes": listed,
            "count": await Note.objects.acount(),
            "found": found,
            "user": user.get_username() if user.is_authenticated else None,
        }
    )


async def notes_page(request):
    """The notes rendered by a template, from rows read with ``async for``."""
    rows = [note async for note in Note.objects.all()]
    return render(request, "pages/notes.html", {"notes": rows})


@csrf_exempt
@require_POST
async def digest(request):
    """The length and SHA-256 of the request body, which Django read from ASGI ``http.request``s."""
    body = request.body
    return JsonResponse({"length": len(body), "sha256": hashlib.sha256(body).hexdigest()})


async def stream(request, token):
    """One line per note, then ``waiting`` until GET /stream/<token>/release/ comes, then ``end``."""
    release = _RELEASES.setdefault(token, asyncio.Event())

    async def lines():
        try:
            async for note in Note.objects.all():
                yield f"{note.position}: {note.title}\n"
            yield "waiting\n"
            try:
                await asyncio.wait_for(release.wait(), RELEASE_TIMEOUT)
            except asyncio.TimeoutError:
                yield "timed out\n"
                return
            yield "end\n"
        finally:
            _RELEASES.pop(token, None)

    return StreamingHttpResponse(lines(), content_type="text/plain; charset=utf-8")


async def streams(request):
    """The tokens of the streams still waiting for their release."""
    return JsonResponse({"waiting": sorted(_RELEASES)})


async def release(request, token):
    event = _RELEASES.get(token)
    if event is None:
        raise Http404("no stream waits under this token")
    event.set()
    return JsonResponse({"released": token})
