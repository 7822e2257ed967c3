import moderation.fields
from django.db import migrations


class Migration(migrations.Migration):
    """Post.stream_url takes the stream schemes the docs promise (rtmp, rtsp, srt, http(s))."""

    dependencies = [
        ("blog", "0002_post_stream_url"),
    ]

    operations = [
        migrations.AlterField(
            model_name="post",
            name="stream_url",
            field=moderation.fields.StreamURLField(
                blank=True, max_length=500, verbose_name="or a stream URL"),
        ),
    ]
