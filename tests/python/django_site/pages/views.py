"""Views of the test project: ``home`` renders a template; ``echo`` is a form whose POST must carry
Django's CSRF token (checked by the default CsrfViewMiddleware) and shows the submitted message."""

from django.shortcuts import render
from django.views.decorators.http import require_http_methods


def home(request):
    return render(request, "pages/home.html", {"method": request.method, "path": request.path})


@require_http_methods(["GET", "POST"])
def echo(request):
    message = request.POST.get("message") if request.method == "POST" else None
    return render(request, "pages/echo.html", {"message": message})
