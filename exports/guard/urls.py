"""Guard pages, mounted at the site root (config/urls.py)."""
from django.urls import path

from exports.guard import views

urlpatterns = [
    path("projects/<slug:slug>/guards/", views.guard_list, name="guards"),
    path("projects/<slug:slug>/guards/<int:pk>/", views.guard_detail, name="guard-detail"),
    path("projects/<slug:slug>/guards/<int:pk>/<str:action>/", views.guard_action, name="guard-action"),
]
