from django.contrib import messages
from django.shortcuts import redirect, render

import moderation

from .forms import PostForm
from .models import Post


def post_list(request):
    posts = moderation.visible(Post.objects.filter(hidden=False))
    waiting = Post.objects.count() - posts.count()
    return render(request, "blog/post_list.html", {"posts": posts, "waiting": waiting})


def post_upload(request):
    form = PostForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, "Thanks! Your post appears once moderation has passed it.")
        return redirect("blog:list")
    return render(request, "blog/post_form.html", {"form": form})
