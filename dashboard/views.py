from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from provisioning.models import Staging, StagingStatus


@login_required
def home(request: HttpRequest) -> HttpResponse:
    stagings = Staging.objects.exclude(status=StagingStatus.DESTROYED).select_related("owner")
    return render(request, "home.html", {"stagings": stagings})
